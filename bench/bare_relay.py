"""The floor the relay is measured against: Redis Pub/Sub to picows clients, nothing else.

`python -m bench.bare_relay --redis-url URL --port PORT [--channel bot:pingpong]`

Per message: decode it, wrap it in the relay's envelope, encode that once and send it to
every connected client. No validation, filters, history, metrics or per-message logging,
and no HTTP plane. Prints {"event": "ready", "port": P} on stdout once it listens and is
subscribed (port 0 picks a free one); stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

import orjson
import redis.asyncio as aioredis
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

_TEXT = WSMsgType.TEXT


class Client(WSListener):
    """A connected client: it is in `clients` while connected, and what it sends is ignored."""

    def __init__(self, clients: set[WSTransport]) -> None:
        super().__init__()
        self.clients = clients

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.clients.add(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.clients.discard(transport)


async def relay(pubsub: aioredis.client.PubSub, clients: set[WSTransport]) -> None:
    """Every message of the subscription, enveloped, encoded once, sent to every client."""
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        try:
            data = orjson.loads(message["data"])
        except orjson.JSONDecodeError:
            continue  # a malformed message is skipped
        payload = orjson.dumps(
            {
                "type": "bot:pingpong",
                "data": data,
                "timestamp": time.time_ns() // 1_000_000,
                "source": "bot",
            }
        )
        for transport in clients:
            transport.send(_TEXT, payload)


async def serve(redis_url: str, port: int, channel: str) -> None:
    clients: set[WSTransport] = set()
    redis = aioredis.from_url(redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    server = await ws_create_server(lambda _request: Client(clients), "127.0.0.1", port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.buffer.write(orjson.dumps({"event": "ready", "port": bound}) + b"\n")
    sys.stdout.buffer.flush()
    relaying = asyncio.create_task(relay(pubsub, clients), name="bare-relay")
    stopping = asyncio.create_task(stop.wait(), name="bare-relay-stop")
    try:
        await asyncio.wait((relaying, stopping), return_when=asyncio.FIRST_COMPLETED)
        if relaying.done():
            relaying.result()  # the subscription ended without a SIGTERM: say why
    finally:
        relaying.cancel()
        stopping.cancel()
        server.close()
        for transport in list(clients):
            transport.disconnect()
        await pubsub.aclose()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_relay", description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--port", type=int, required=True, help="0: any free port")
    parser.add_argument("--channel", default="bot:pingpong")
    args = parser.parse_args()
    uvloop.run(serve(args.redis_url, args.port, args.channel))


if __name__ == "__main__":
    main()
