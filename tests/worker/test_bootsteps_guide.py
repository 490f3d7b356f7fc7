"""The example step of docs/user-guide/bootsteps.md, run as the guide shows it: it gets the
consumer typed, starts after it, stops before it, and appears in ``kernel worker --graph``."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from click.testing import CliRunner

from kernel import App
from kernel.cli import cli
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide" / "bootsteps.md"


def guide_module(name: str) -> types.ModuleType:
    """The guide's first code block, as an importable module."""
    source = re.search(r"```python\n# proj/throughput.py\n(.*?)```", GUIDE.read_text(), re.S)
    assert source, "the guide's example is gone"
    module = types.ModuleType(name)
    exec(compile(source.group(1), str(GUIDE), "exec"), module.__dict__)  # noqa: S102
    sys.modules[name] = module
    return module


def test_the_guides_step_runs_between_the_consumer_start_and_stop() -> None:
    throughput = guide_module("guide_throughput")
    throughput.Throughput.every = 0.2
    app = App("guide", broker="memory://guide", results="memory://guide",
              plugins=[throughput])

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with running_worker(app, nodename="guide@test") as worker:
        [step] = [s for s in worker.blueprint.started if s.name == "throughput"]
        assert [add.delay(1, n).get(timeout=10) for n in range(3)] == [1, 2, 3]
        wait_for(lambda: sum(step.reports) == 3, 10, "a report counting the three tasks")
        consumer = worker.consumer
        assert consumer is not None
        order = [s.name for s in worker.blueprint.started]
        assert order.index("throughput") > order.index("consumer"), order
    assert not step.thread.is_alive(), "stopped with the worker"
    assert consumer._stopped, "the consumer stopped after the step that requires it"


def test_the_guides_step_is_in_the_graph(tmp_path: Path) -> None:
    guide_module("guide_throughput_cli")
    (tmp_path / "guide_app.py").write_text(
        "import guide_throughput_cli\nfrom kernel import App\n"
        "app = App('g', broker='memory://g', plugins=[guide_throughput_cli])\n")
    sys.path.insert(0, str(tmp_path))
    try:
        result = CliRunner().invoke(cli, ["-A", "guide_app:app", "worker", "--graph"])
    finally:
        sys.path.remove(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert '"throughput" -> "consumer";' in result.output
