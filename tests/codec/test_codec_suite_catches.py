"""The conformance suites fail for broken implementations, with a message saying what to fix."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

BROKEN = textwrap.dedent('''
    import json
    import pytest
    from kernel.testing import CompressorSuite, SerializerSuite

    class LossyJson:
        """Raw json errors escape, ints come back as strings, unsupported values are vague."""
        name = "lossy"
        content_type = "application/x-lossy"
        content_encoding = "utf-8"

        def dumps(self, obj):
            try:
                return json.dumps(obj, default=lambda o: 1 / 0).encode()
            except ZeroDivisionError:
                raise ValueError("cannot encode that") from None

        def loads(self, data):
            return json.loads(data, parse_int=str)

    class Identity:
        name = "identity"
        mime = "application/x-identity"

        def compress(self, data):
            return data

        def decompress(self, data):
            return data

    class TestLossy(SerializerSuite):
        @pytest.fixture
        def serializer(self):
            return LossyJson()

    class TestIdentity(CompressorSuite):
        @pytest.fixture
        def compressor(self):
            return Identity()
''')


def test_suites_report_what_a_broken_codec_gets_wrong(tmp_path: Path) -> None:
    (tmp_path / "test_broken_codec.py").write_text(BROKEN)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
         "-p", "no:randomly", "test_broken_codec.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    failed = set(re.findall(r"^FAILED test_broken_codec.py::(\w+::\w+)", out, re.M))
    assert failed == {
        "TestLossy::test_round_trips_samples",
        "TestLossy::test_dumps_of_unsupported_value_names_its_type",
        "TestLossy::test_loads_of_garbage_raises_decode_error",
        "TestLossy::test_loads_of_truncated_body_raises_decode_error",
        "TestLossy::test_is_thread_safe",
        "TestIdentity::test_large_input",
        "TestIdentity::test_garbage_raises_decode_error",
    }, out
    assert "fix: catch the library's errors and raise DecodeError" in out
    assert "does not name the type 'lock'" in out
