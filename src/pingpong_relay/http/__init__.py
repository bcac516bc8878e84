"""The HTTP plane (aiohttp): the dashboard, health, metrics, statistics, statuses, alerts,
history and analytics, behind a Host check, token scopes and a connection cap.

`app.build_app` puts the application together: one typed `state.PlaneState` under an
`AppKey`, the access guard in `middleware`, and one small module of named handlers per
resource (`health`, `metrics`, `stats`, `alerts`, `history`, `analytics`, `pages`),
answering through `responses`. `server.HttpPlane` listens, capping connections and
bounding request heads; `refusals` counts and logs what is refused; `guard` holds the
pure checks; `jwks` keeps an identity provider's keys current.
"""
