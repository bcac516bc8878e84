"""`python -m bench.soak`: a long run with client churn, Redis kills and a worker kill.

It starts its own redis-server and one `serve --workers N` relay, holds a pool of
WebSocket clients in a separate load process (uvloop + picows) that keeps about
`--clients` connected while a share of them disconnect and reconnect every second,
publishes `--rate` msg/s with a global sequence number, SIGKILLs redis-server every
`--redis-kill-every` seconds (restarting it on the same port) and SIGKILLs one worker
once. Then it works out, per client session, which messages it should have received
and reports what was lost outside the windows in which the session's worker could not
hear Redis, the relay's RSS at the start and the end, and how long resubscribing and
restarting took. It reports; it asserts nothing (exit 0 unless the harness fails).

The load process is `python -m bench.soak.load ...` (internal).
"""
