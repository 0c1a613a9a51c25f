"""The admin console: ``/admin/queues`` and the pages under it, rendered on the server.

What Bull Board was to the old services, for on-call engineers in a browser::

    GET  /admin/login, POST /admin/login     a token in, a session cookie out
    POST /admin/logout
    GET  /admin/queues                       health, every queue (ready, delayed, in
                                             flight, dead, oldest age), pipelines over
                                             24 h, ticks and their next run, review
    GET  /admin/dead-letters?queue=&actor=&error=&since=&tenant=&job=
                                             the dead letters, their errors and
                                             tracebacks; replay or purge the selected
    GET  /admin/dead-letters/{id}            one in full: payload, traceback, its job,
                                             its audit trail; replay, purge, edit
    POST /admin/dead-letters/replay|purge    ``id`` (repeated), ``reason``, ``csrf``
    POST /admin/dead-letters/{id}/payload    ``payload`` (JSON), ``reason``, ``csrf``
    GET  /admin/jobs/{id}, /admin/jobs?id=   a job step by step, its dead letters
    GET  /admin/review                       jobs failed at intake, calls of unknown outcome
    GET  /admin/audit?action=&target=        who changed what, with the payloads' diffs

No page loads a script (the Content-Security-Policy forbids it): tracebacks fold with
``<details>``, auto-refresh is ``?refresh=SECONDS``. Changes go through the same
dead-letter desk (``infra.dlq``) as the CLI and the admin API, audited under the
token's name. ``producers.console.auth`` says how sessions and CSRF work.
"""
