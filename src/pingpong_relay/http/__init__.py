"""The HTTP plane (aiohttp): the dashboard, health, metrics, stats, statuses, alerts, history.

Also analytics; all of it behind a Host check, token scopes and a connection cap.

`app.build_app` puts the application together: one typed `state.PlaneState` under an
`AppKey`, the access guard in `middleware`, and one small module of named handlers per
resource (`health`, `metrics`, `stats`, `alerts`, `history`, `analytics`, `pages`),
answering through `responses`. `server.HttpPlane` listens, capping connections and
bounding request heads; `refusals` counts and logs what is refused; `guard` holds the
pure checks; `jwks` keeps an identity provider's keys current.

Layer: an edge, beside `cluster` (and the public APIs `publisher` and `client`), none of
which imports another; only `app` sits above. May import `aiohttp`, the edges below it
(`redis_io`, for the history and rollups it serves; `ws`, `notify`), `telemetry` and the
pure core; never `app` or `cluster`, whose merged /metrics and /healthz it is handed.
"""
