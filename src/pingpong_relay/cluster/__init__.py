"""`serve --workers N`: several relay processes on one set of ports, answering as one relay.

Layer: an edge, beside `http` (and the public APIs `publisher` and `client`), none of
which imports another. `supervisor` starts the worker processes, restarts a crashed one
and stops them all; `siblings` lets a worker ask the others for their /metrics and
/healthz over private Unix sockets; `aggregate` merges the answers (pure).

May import the edges below it (`ws`, `redis_io`, `notify`; the supervisor resolves the
shared Redis through `redis_io`), `telemetry` and the core; never `app`, which hands the
supervisor its worker entry point instead.
"""
