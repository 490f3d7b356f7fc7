"""Benchmarks of kernel against Celery, Dramatiq and Huey on Redis and RabbitMQ (issue 7).

``python -m tests.bench [--quick] [--json out.json] [--broker redis] [--only kernel,celery]``;
``nox -s bench`` installs the peers and runs it. See `tests.bench.cli` for the options,
`tests.bench.scenarios` for what each row measures and `tests.bench.brokers` for what differs
between brokers.
"""
