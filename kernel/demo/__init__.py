"""``kernel demo``: a worker, a few thousand tasks and a summary, with nothing configured.

`kernel.demo.tasks` holds the tasks (the worker imports it with ``-A kernel.demo.tasks:app``),
`kernel.demo.workloads` what is sent and how each outcome is judged, `kernel.demo.runner` the run.
"""
