"""The fault suite (``nox -s faults``): real brokers, workers and clients, and the faults they
must survive, each measured; see docs/reliability.md. The default test run does not collect it
(``norecursedirs`` in pyproject.toml)."""
