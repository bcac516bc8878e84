"""pingpong-relay: trading-bot heartbeats from Redis Pub/Sub to WebSocket clients, live."""

__version__ = "0.1.0"
