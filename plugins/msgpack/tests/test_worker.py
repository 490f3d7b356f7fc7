"""A kernel worker that accepts msgpack runs msgpack tasks, and dead-letters, with the reason
logged, a msgpack body that is not one value, serving on. On SQLite (a real file, real worker
threads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.codec import refused_body_is_dead_lettered

#: add(2, 3)'s body, and a byte after it: a broken producer's.
HOSTILE = b"\x93\x92\x02\x03\x80\x80\xc0"


def test_a_body_that_is_not_one_value_is_dead_lettered_with_the_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    refused_body_is_dead_lettered(tmp_path, caplog, "msgpack", HOSTILE,
                                  reason="bytes follow the first",
                                  logged="body is not one msgpack value")
