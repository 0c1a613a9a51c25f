"""Prometheus metrics of every process, and how each process serves them.

- ``multiprocess``: the files gunicorn's and Dramatiq's processes share their metrics
  through: one directory per process role, cleaned by the parent before it forks,
  live gauges of a dead child dropped, read back at scrape time.
- ``api``: what the API's workers count (HTTP requests, webhooks received).
- ``work``: what the worker's processes measure (queue wait and run time per actor, a
  job's time from accepted to completed, outgoing calls);
- ``outbound``: outgoing calls counted by outcome at the telephony port;
- ``queue_state``: the scheduler's scrape-time collector of the queues in Redis and the
  inbox relay's backlog.

The README's "Metrics" section lists every name with its labels and process.
"""
