"""gunicorn settings of a deployment (and of the benchmark stack): ``gunicorn config.wsgi -c config/gunicorn.py``.

Threaded workers that keep client connections open. gunicorn's sync worker closes the
connection after every response, so each request pays a TCP connect, an accept and a graceful
close on top of its own work; measured on the bench stack (paired servers, requests alternating,
2 cores shared with the Celery workers): per request 0.9-1.0 ms less worker CPU on
``/health/live/`` and about 2 ms less on ``POST /api/trading/trades/``, whose p50 went from 17.5
to 12.6 ms and from 21.2 to 17.3 ms in two runs. Several threads per worker, because a worker
takes every connection it wins, not only as many as it has threads: with one thread, two
keep-alive clients on the same worker queue behind each other while another worker idles.
Each thread keeps its own database connection (``CONN_MAX_AGE``): workers x threads of them.
https://docs.gunicorn.org/en/stable/design.html#how-many-threads
"""
from __future__ import annotations

worker_class = "gthread"
workers = 4
threads = 4
keepalive = 5
timeout = 30
#: No control socket (gunicorn 27 binds one at a shared default path, ~/.gunicorn/gunicorn.ctl, so
#: several servers on one host, as the benchmark and fault-test stacks start, would contend for it).
control_socket_disable = True
