"""Heartbeats from bots that don't speak Redis: each way in (push and ping URLs, MQTT,
pollers) publishes what it hears to the Redis channel through one `inlet.Inlet`, so every
relay on that Redis sees it like any other heartbeat."""

__all__: list[str] = []
