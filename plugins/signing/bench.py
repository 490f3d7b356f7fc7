"""What signing costs a task: encode+decode of a 1 KiB and a 100 KiB task body through kernel's
codec with ``auth`` and ``hmac``, against Celery's auth serializer (serialize+deserialize), same
keys, same run, best of 5. ``python plugins/signing/bench.py`` (needs celery[auth])."""

from __future__ import annotations

import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from celery.security.certificate import Certificate, FSCertStore
from celery.security.key import PrivateKey
from celery.security.serialization import SecureSerializer

from kernel import App
from kernel_signing.testing import make_pki


def per_call(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def kernel_round_trip(app: App, signer: str, body: object) -> Callable[[], object]:
    def run() -> object:
        data, content_type, _, compression = app.codec.encode(body, signer)
        return app.codec.decode(data, content_type, compression)
    return run


def celery_round_trip(serializer: SecureSerializer, body: object) -> Callable[[], object]:
    return lambda: serializer.deserialize(serializer.serialize(body))


def main() -> None:
    root = Path(tempfile.mkdtemp())
    pki = make_pki(root)
    store = root / "celery-store"  # Celery will not load a store holding an expired certificate
    store.mkdir()
    (store / "signer.pem").write_bytes(pki.signer.cert_path.read_bytes())
    signed = App("bench", config={**pki.settings(), "security_cert_store": str(store)})
    signed.setup_security()
    shared = App("bench", config={"hmac_keys": ["x" * 32], "accept_content": ["hmac"]})
    celery = SecureSerializer(PrivateKey(pki.signer.key_path.read_text()),
                              Certificate(pki.signer.cert_path.read_text()),
                              FSCertStore(str(store)), "sha256", "json")
    for size in (1024, 100 * 1024):
        body = [["x" * (size - 80)], {}, {"callbacks": None, "errbacks": None, "chain": None,
                                          "chord": None}]

        number = 200 if size == 1024 else 50
        rows = {"kernel auth": kernel_round_trip(signed, "auth", body),
                "Celery auth": celery_round_trip(celery, body),
                "kernel hmac": kernel_round_trip(shared, "hmac", body)}
        for name, run in rows.items():
            print(f"{size // 1024:>4} KiB  {name:<12} {per_call(run, number) * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
