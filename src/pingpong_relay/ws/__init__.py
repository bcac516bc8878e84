"""The WebSocket data plane on picows: upgrades, connected clients and their sessions.

Layer: an edge, beside `redis_io` and `notify`, none of which imports another; `app`,
`http` and `cluster` sit above. `dataplane` serves the upgrade at `/`; `admission` decides
who may upgrade; `peer` is one connected client, the hub's peer on a picows transport;
`sessions` is what happens after the upgrade (token refresh and expiry, commands, the
joining messages, replay).

May import `picows`, `telemetry` and the pure core (the hub, subscriptions, auth);
never another edge: replay reads the history through `replay.HistoryReader`, which the
wiring fills with `redis_io.history`.
"""
