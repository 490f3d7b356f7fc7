"""A kernel worker that accepts YAML runs YAML tasks and dead-letters, with the reason logged, a
body whose tag would construct a Python object, serving on. On SQLite (a real file, real worker
threads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.codec import refused_body_is_dead_lettered

#: what a hostile producer would write: add(...) whose args build os.system("...").
HOSTILE = b"- - !!python/object/apply:os.system [echo owned]\n  - 3\n- {}\n- {}\n"


def test_an_object_building_tag_is_dead_lettered_with_the_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    refused_body_is_dead_lettered(tmp_path, caplog, "yaml", HOSTILE, reason="safe loader only",
                                  logged="python/object/apply:os.system")
