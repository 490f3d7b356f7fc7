"""kernel-amqp as a distribution: its ``[tool.kernel]`` declaration is what it registers."""

from __future__ import annotations

from pathlib import Path

from kernel.testing import check_distribution


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")
