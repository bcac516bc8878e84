"""/alerts: active and recently resolved alerts, limited to the bots a token covers."""

from __future__ import annotations

from aiohttp import web

from pingpong_relay.http.responses import large_json
from pingpong_relay.http.state import STATE, visible

__all__ = ["alerts"]


async def alerts(request: web.Request) -> web.Response:
    """The monitor's active and recently resolved alerts, each list filtered to the bots
    the request may see; an active one a mute covers says `"muted": true`, as its event did."""
    monitor = request.app[STATE].monitor
    body = monitor.alerts()
    for alert in body["active"]:
        if monitor.muted(alert["bot"], alert["rule"]):
            alert["muted"] = True
    return await large_json(
        {k: [a for a in v if visible(request, a["bot"])] for k, v in body.items()}
    )
