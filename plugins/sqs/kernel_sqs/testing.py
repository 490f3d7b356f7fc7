"""SQS for tests: moto's server (`kernel.testing.moto.MotoServer`, from the ``test`` extra) on a
free loopback port, in memory, and the transport's URL and options on it::

    from kernel_sqs.testing import SQSServer

    with SQSServer(tmp_path) as server:
        server.url              # sqs://testing:testing@127.0.0.1:PORT
        server.aws_client("sqs")

``KERNEL_SQS_TEST_URL`` (with credentials in the URL or boto3's chain, and the region in
``AWS_DEFAULT_REGION``) runs the tests against that SQS instead: see `test_url`. The tests make
queues of their own (``q-<uuid>``) and leave them behind; delete them after a run.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path

from kernel.testing import moto

__all__ = ["SQSServer", "test_url"]


def test_url() -> str | None:
    """``KERNEL_SQS_TEST_URL``: a real SQS's URL (``sqs://`` or ``sqs://KEY:SECRET@``), or None
    for moto."""
    return os.environ.get("KERNEL_SQS_TEST_URL") or None


#: moto 5's ReceiveMessage is not atomic: two receives at once, on threads of its server, can
#: both take one message, which SQS never does. Receives (and the deletes and visibility
#: changes that race them) take one lock, given up while a long poll waits.
ATOMIC_RECEIVE = textwrap.dedent("""
    import threading
    from moto.sqs import models
    lock = threading.Lock()
    def locked(method):
        def call(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)
        return call
    for name in ("receive_message", "delete_message", "change_message_visibility"):
        setattr(models.SQSBackend, name, locked(getattr(models.SQSBackend, name)))
    wait = models.Queue.wait_for_messages
    def unlocked_wait(self, timeout):
        lock.release()
        try:
            wait(self, timeout)
        finally:
            lock.acquire()
    models.Queue.wait_for_messages = unlocked_wait
""")


class SQSServer(moto.MotoServer):
    """moto's server, its receives made atomic (`ATOMIC_RECEIVE`); `url` is the transport's
    URL on it (kombu's form: the host is the endpoint), which a Celery client takes as it is."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(directory, port=port, env=env, patch=ATOMIC_RECEIVE,
                         hint="pip install 'kernel-sqs[test]' (moto[server])")

    @property
    def url(self) -> str:
        return f"sqs://{self.access_key}:{self.secret_key}@{self.host}:{self.port}"
