"""The API's edge: a buffering HTTP/1.1 proxy that ``switchboard api`` runs in front of gunicorn.

gunicorn's gthread worker gives a thread to a connection while its request arrives: a
few clients that send part of a request and stall hold every thread, and ``/healthz``
and the webhooks wait behind them (FIELD-NOTES). The edge reads each request whole,
head and body, on an asyncio loop where a stalled connection costs a coroutine and its
buffer, within time and size limits (``SWITCHBOARD_API__*``); only then does it open a
connection to gunicorn and send the request, so gunicorn's threads only ever serve
complete requests. The answer streams back through a bounded buffer.

::

    client ──TCP──▶ edge (asyncio + h11) ──unix socket, PROXY v1──▶ gunicorn (gthread)

- ``limits``: the limits, from settings.
- ``problems``: the answers the edge gives itself (``Refusal``), as problem+json.
- ``requests``: reading a client's request whole, or refusing it (400, 408, 413, 431…).
- ``upstream``: forwarding a request to gunicorn and relaying its answer.
- ``server``: the connections, their number, the graceful stop.
- ``process``: the process root (``python -m infra.edge``), which starts gunicorn.
"""
