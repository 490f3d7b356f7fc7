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
    source = re.search(r"```python\n# proj/liveness.py\n(.*?)```", GUIDE.read_text(), re.S)
    assert source, "the guide's example is gone"
    module = types.ModuleType(name)
    exec(compile(source.group(1), str(GUIDE), "exec"), module.__dict__)  # noqa: S102
    sys.modules[name] = module
    return module


def test_the_guides_step_runs_between_the_consumer_start_and_stop() -> None:
    liveness = guide_module("guide_liveness")
    app = App("guide", broker="memory://guide", results="memory://guide",
              plugins=[liveness])

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with running_worker(app, nodename="guide@test") as worker:
        alive = Path("/tmp/guide@test.alive")
        assert add.delay(1, 2).get(timeout=10) == 3
        wait_for(alive.exists, 10, "the liveness file")
        consumer = worker.consumer
        assert consumer is not None
        order = [step.name for step in worker.blueprint.started]
        assert order.index("liveness") > order.index("consumer"), order
    assert not alive.exists(), "stopped (and cleaned up) with the worker"
    assert consumer._stopped, "the consumer stopped after the step that requires it"


def test_the_guides_step_is_in_the_graph(tmp_path: Path) -> None:
    guide_module("guide_liveness_cli")
    (tmp_path / "guide_app.py").write_text(
        "import guide_liveness_cli\nfrom kernel import App\n"
        "app = App('g', broker='memory://g', plugins=[guide_liveness_cli])\n")
    sys.path.insert(0, str(tmp_path))
    try:
        result = CliRunner().invoke(cli, ["-A", "guide_app:app", "worker", "--graph"])
    finally:
        sys.path.remove(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert '"liveness" -> "consumer";' in result.output
