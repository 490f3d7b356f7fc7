"""Coverage-guided fuzzing (atheris, libFuzzer) of the decoding path over raw bytes: the
promise is the same as the structured fuzzers' (tests/fuzz/test_fuzz_decoding.py), every input
decodes or raises `MessageError`; anything else is a crash libFuzzer reports with the input.

``nox -s fuzz`` runs it for a bounded time (CI: 60 s) from the seed corpus of valid and broken
messages written at start; ``nox -s fuzz -- -max_total_time=600`` runs longer.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["kernel"]):
    from kernel.errors import MessageError
    from tests.fuzz.decoding import decode

TASK_ID = "9b3f0c1e-0000-4000-8000-000000000001"


def seeds() -> list[bytes]:
    """Valid messages of each shape, for libFuzzer to mutate from."""
    def message(body: object, **headers: object) -> bytes:
        return json.dumps({
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "content-encoding": "utf-8", "content-type": "application/json",
            "headers": {"lang": "py", "task": "t.add", "id": TASK_ID, "retries": 0,
                        "timelimit": [None, None], "eta": None, **headers},
            "properties": {"correlation_id": TASK_ID, "body_encoding": "base64",
                           "delivery_info": {"exchange": "", "routing_key": "celery"}},
        }).encode()

    embed = {"callbacks": [{"task": "t.cb", "args": [], "kwargs": {}, "options": {}}],
             "errbacks": None, "chain": [{"task": "t.next", "subtask_type": None}],
             "chord": {"task": "t.body", "options": {"link_error": [{"task": "t.err"}]}}}
    return [message([[2, 40], {}, {}]), message([[1], {"y": 2}, embed], group="g",
                                                 group_index=1),
            message([[], {}, None], eta="2026-12-02T10:00:00+00:00", expires=None)]


HEADERS = ("task", "id", "retries", "eta", "expires", "timelimit", "group", "group_index",
           "root_id", "parent_id", "ignore_result", "compression")
PROPERTIES = ("correlation_id", "reply_to", "delivery_info", "priority", "body_encoding")
EMBED = ("callbacks", "errbacks", "chain", "chord")


def value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    """A JSON value of the fuzzer's choosing (so coverage steers types, not only bytes)."""
    kind = fdp.ConsumeIntInRange(0, 7 if depth < 4 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(9)
    if kind == 3:
        return fdp.ConsumeFloat()  # inf and nan included
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(12)
    if kind == 5:
        return [value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 6:
        return {"task": fdp.ConsumeUnicodeNoSurrogates(6), "args": value(fdp, depth + 1),
                "kwargs": value(fdp, depth + 1), "options": value(fdp, depth + 1),
                "subtask_type": value(fdp, depth + 1)}
    return {fdp.ConsumeUnicodeNoSurrogates(6): value(fdp, depth + 1)
            for _ in range(fdp.ConsumeIntInRange(0, 3))}


def structured(fdp: atheris.FuzzedDataProvider) -> bytes:
    """A message whose headers, properties and body parts are the fuzzer's values."""
    headers: dict[str, object] = {"task": "t.add", "id": TASK_ID}
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        headers[fdp.PickValueInList(list(HEADERS))] = value(fdp)
    properties: dict[str, object] = {"body_encoding": "base64"}
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        properties[fdp.PickValueInList(list(PROPERTIES))] = value(fdp)
    embed = {fdp.PickValueInList(list(EMBED)): value(fdp)
             for _ in range(fdp.ConsumeIntInRange(0, 3))}
    body = [value(fdp), value(fdp), embed] if fdp.ConsumeBool() else value(fdp)
    return json.dumps({"body": base64.b64encode(json.dumps(body).encode()).decode(),
                       "content-type": "application/json", "content-encoding": "utf-8",
                       "headers": headers, "properties": properties}).encode()


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    raw = structured(fdp) if fdp.ConsumeBool() else fdp.ConsumeBytes(len(data))
    try:
        decode(raw)
    except MessageError:
        pass


def main() -> None:
    corpus = Path(tempfile.mkdtemp(prefix="kernel-fuzz-"))
    for n, seed in enumerate(seeds()):
        (corpus / f"seed-{n}").write_bytes(seed)
    sys.setrecursionlimit(2000)  # the default; deep inputs must be refused, not crash
    atheris.Setup([*sys.argv, str(corpus)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
