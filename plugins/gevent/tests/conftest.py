"""The test process is monkey-patched first, as ``kernel worker -P gevent`` patches a worker:
the pool's suite runs in it. The worker tests run on SQLite (a file of the test's own), Redis
(``KERNEL_REDIS_TEST_URL``) and RabbitMQ (``KERNEL_AMQP_TEST_URL``); a server that does not
answer skips them, except under CI (``CI`` set), where that is a failure."""

from kernel_gevent import patch

patch()

from pathlib import Path  # noqa: E402 - after the patch, on purpose

import pytest  # noqa: E402

from kernel.testing.green import broker_url  # noqa: E402


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return broker_url(request.param, tmp_path)
