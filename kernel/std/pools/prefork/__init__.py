"""The prefork pool: jobs run in child processes forked by multiprocessing's fork server.

`pool` is the parent side (dispatch, limits, recycling, shutdown), `child` the loop each child runs.
"""
