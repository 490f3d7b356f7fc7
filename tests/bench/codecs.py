"""The codecs' table: encode then decode of a typical task body of 1 KiB and of 100 KiB, per
serializer (kernel's `Codec.encode` + `Codec.decode`, the calls a producer and a worker make,
against kombu's ``dumps`` + ``loads`` for the same content type) and per compressor (kernel's
compressor against ``kombu.compression`` under the same header, on the json body), in the same
process, alternating within each run (median of the runs). No server is needed.

Rows (ids as in the JSON):
  codec.<serializer>.<size>   json, pickle, msgpack, yaml: round trips per second
  codec.<compressor>.<size>   zlib, bzip2, lzma, zstd, brotli: round trips per second; the
                              compressed sizes are in ``bytes``
  codec.<signer>.<size>       auth (kernel-signing's X.509 signer against Celery's auth
                              serializer, same key and certificate store) and hmac (kernel
                              alone: Celery has no such signer): signed json round trips per
                              second, kernel's `Codec.encode` + `Codec.decode`

A codec whose library is missing has "-" for that system, with the reason; so has kombu's
column without kombu (``nox -s bench`` installs Celery).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel import App

SERIALIZERS = ("json", "pickle", "msgpack", "yaml")
COMPRESSORS = ("zlib", "bzip2", "lzma", "zstd", "brotli")
SIGNERS = ("auth", "hmac")
SIZES = {"1KiB": 1024, "100KiB": 100 * 1024}
#: each measurement runs its round trips for at least this long.
SLICE = 0.2


def body(size: int) -> list[Any]:
    """``[args, kwargs, embed]`` of about `size` bytes as json: records of ids, names, numbers
    and flags, what tasks are given most."""
    records: list[dict[str, Any]] = []
    value: list[Any] = [[records], {"batch": "2026-12-07", "retry": False},
                        {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    while len(json.dumps(value, separators=(",", ":"))) < size:
        i = len(records)
        records.append({"id": 10_000 + i, "name": f"customer-{i:05d}", "score": i * 0.25,
                        "active": i % 3 == 0, "tags": ["eu", "paid"] if i % 2 else []})
    return value


def _rate(round_trip: Callable[[], object]) -> float:
    """Round trips per second over one slice."""
    count, started = 0, time.perf_counter()
    while True:
        for _ in range(10):
            round_trip()
        count += 10
        elapsed = time.perf_counter() - started
        if elapsed >= SLICE:
            return count / elapsed


def _serializer_pair(app: App, name: str, value: Any) -> tuple[Callable[[], object], ...]:
    codec = app.codec
    codec.serializer(name)  # built (and its library imported) outside the clock
    content_type = codec.serializer(name).content_type

    def kernel() -> object:
        data, ctype, _, _ = codec.encode(value, name)
        return codec.decode(data, ctype)

    accept = {content_type}
    try:
        from kombu import serialization as kombu_serialization
    except ImportError as exc:
        return kernel, _missing(exc)

    def kombu() -> object:
        ctype, encoding, data = kombu_serialization.dumps(value, name)
        return kombu_serialization.loads(data, ctype, encoding, accept=accept)

    return kernel, kombu


def _compressor_pair(app: App, name: str, data: bytes) -> tuple[Callable[[], object], ...]:
    compressor = app.codec.compressor(name)
    mime = compressor.mime

    def kernel() -> object:
        return compressor.decompress(compressor.compress(data))

    try:
        from kombu import compression as kombu_compression
    except ImportError as exc:
        return kernel, _missing(exc)

    def kombu() -> object:
        packed, header = kombu_compression.compress(data, mime)
        return kombu_compression.decompress(packed, header)

    return kernel, kombu


@dataclass
class Signing:
    auth: App
    hmac: App
    pki: Any  # kernel_signing.testing.Pki
    store: Path  # the trusted certificates, Celery's store too


@contextmanager
def _signing_apps() -> Iterator[Signing]:
    """Apps that sign with ``auth`` (a fresh key and certificate store of kernel-signing's
    test PKI) and with ``hmac``; the store's directory is Celery's too."""
    from kernel_signing.testing import make_pki

    with tempfile.TemporaryDirectory(prefix="kernel-bench-pki-") as root:
        pki = make_pki(Path(root))
        # Celery refuses a store that holds an expired certificate: the signer's alone.
        store = Path(root) / "celery-store"
        store.mkdir()
        (store / pki.signer.cert_path.name).write_bytes(pki.signer.cert_path.read_bytes())
        auth = App("bench-auth", broker="memory://", results=None,
                   config={**pki.settings(), "security_cert_store": str(store)})
        auth.setup_security()
        hmac = App("bench-hmac", broker="memory://", results=None,
                   config={"hmac_keys": ["k" * 32], "accept_content": ["hmac"]})
        try:
            yield Signing(auth, hmac, pki, store)
        finally:
            auth.close()
            hmac.close()


def _signer_pair(signing: Signing, name: str, value: Any) -> tuple[Callable[[], object], ...]:
    codec = (signing.auth if name == "auth" else signing.hmac).codec

    def kernel() -> object:
        data, ctype, _, compression = codec.encode(value, name)
        return codec.decode(data, ctype, compression)

    if name != "auth":
        return (kernel,)
    try:
        from celery.security.certificate import Certificate, FSCertStore
        from celery.security.key import PrivateKey
        from celery.security.serialization import SecureSerializer
    except ImportError as exc:
        return kernel, _missing(exc)
    signer = signing.pki.signer
    celery = SecureSerializer(PrivateKey(signer.key_path.read_text()),
                              Certificate(signer.cert_path.read_text()),
                              FSCertStore(str(signing.store)), "sha256", "json")
    return kernel, lambda: celery.deserialize(celery.serialize(value))


def _missing(exc: ImportError) -> Callable[[], object]:
    """kombu's side when kombu is not installed: says so when measured."""

    def kombu() -> object:
        raise exc

    return kombu


def _kombu_size(data: bytes, mime: str) -> int | None:
    try:
        from kombu import compression as kombu_compression
    except ImportError:
        return None
    return len(kombu_compression.compress(data, mime)[0])


def measure(names: list[str], runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The table's rows for the codecs `names` (of SERIALIZERS, COMPRESSORS and SIGNERS)."""
    if any(name in SIGNERS for name in names):
        try:
            with _signing_apps() as signing:
                return _measure(names, runs, log, signing)
        except ImportError as exc:  # kernel-signing is not installed: its rows say so
            log(f"codecs: no signing rows ({exc})")
    return _measure([n for n in names if n not in SIGNERS], runs, log, None)


def _measure(names: list[str], runs: int, log: Callable[[str], None],
             signing: Signing | None) -> dict[str, Any]:
    app = App("bench-codecs", broker="memory://", results=None,
              config={"accept_content": list(SERIALIZERS)})
    rows: list[dict[str, Any]] = []
    try:
        for size_name, size in SIZES.items():
            value = body(size)
            json_body = app.codec.encode(value, "json")[0]
            for name in names:
                row: dict[str, Any] = {"id": f"codec.{name}.{size_name}", "values": {},
                                       "why": {}, "bytes": {}}
                rows.append(row)
                try:
                    if name in SERIALIZERS:
                        pair = _serializer_pair(app, name, value)
                    elif name in SIGNERS:
                        assert signing is not None
                        pair = _signer_pair(signing, name, value)
                    else:
                        pair = _compressor_pair(app, name, json_body)
                        row["bytes"] = {
                            "kernel": len(app.codec.compressor(name).compress(json_body)),
                            "celery": _kombu_size(json_body, app.codec.compressor(name).mime)}
                except Exception as exc:  # noqa: BLE001 - a missing library: say so, go on
                    row["why"]["kernel"] = f"{type(exc).__name__}: {exc}"
                    continue
                samples: dict[str, list[float]] = {"kernel": [], "celery": []}
                for _ in range(runs):
                    systems = ("kernel", "celery")[:len(pair)]  # hmac: kernel alone
                    for system, round_trip in zip(systems, pair, strict=True):
                        try:
                            samples[system].append(_rate(round_trip))
                        except Exception as exc:  # noqa: BLE001 - kombu lacks the library
                            row["why"][system] = f"{type(exc).__name__}: {exc}"
                row["values"] = {s: statistics.median(v) for s, v in samples.items() if v}
                log(f"codecs: {row['id']} {row['values']}")
    finally:
        app.close()
    return {"runs": runs, "sizes": SIZES, "rows": rows}


def render(table: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    out = Table(title=f"Codecs: encode + decode of a task body, round trips per second (median "
                      f"of {table['runs']}); compressors on the json body, sizes in bytes")
    for column in ("row", "kernel", "kombu (auth: Celery)", "kernel / kombu",
                   "bytes kernel / kombu; why -"):
        out.add_column(column, justify="left" if column == "row" else "right")
    for row in table["rows"]:
        kernel, kombu = row["values"].get("kernel"), row["values"].get("celery")
        ratio = "-" if kernel is None or kombu is None else f"{kernel / kombu:.2f}x"
        sizes = row["bytes"]
        size = f"{sizes['kernel']:,} / {sizes['celery'] or '-'}" if sizes else ""
        why = "; ".join(f"{s}: {w}" for s, w in row["why"].items())
        out.add_row(row["id"], _fmt(kernel), _fmt(kombu), ratio, f"{size} {why}".strip())
    console.print(out)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
