"""The core's layers (see the ``[tool.importlinter]`` contracts in pyproject.toml): contracts →
wire → client → worker and the tools, no module importing upward and no import cycle, imports
inside functions included; and the client side of kernel never loads the worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_modules_import_only_downward_and_in_no_cycle() -> None:
    done = subprocess.run([sys.executable, "-c",
                           "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, ("an import breaks kernel's layers or makes a cycle (see "
                                  "[tool.importlinter] in pyproject.toml):\n" + done.stdout
                                  + done.stderr)


def test_declaring_sending_and_reading_tasks_does_not_import_the_worker() -> None:
    code = """
import json, sys
from kernel import App, chain, group
app = App("client", broker="memory://", results="memory://")

@app.task(rate_limit="10/s", global_rate_limit="5/m", max_retries=1)
def add(x: int, y: int) -> int:
    return x + y

result = add.delay(1, 2)
group(add.s(1, 1), add.s(2, 2)).apply_async()
chain(add.s(1, 1), add.s(3)).apply_async()
with app.pipelined():
    add.delay(3, 4)
print(json.dumps([result.state, sorted(m for m in sys.modules if m.startswith("kernel.worker"))]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    state, loaded = json.loads(done.stdout)
    assert state == "PENDING"
    assert loaded == [], f"a client imported the worker: {loaded}"
