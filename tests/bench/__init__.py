"""Benchmarks of kernel against Celery, Dramatiq and Huey on one Redis (issue 7).

``python -m tests.bench [--quick] [--json out.json] [--only kernel,celery]``; ``nox -s bench``
installs the peers and runs it. See `tests.bench.cli` for the options and
`tests.bench.scenarios` for what each row measures.
"""
