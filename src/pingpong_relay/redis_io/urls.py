"""Redis clients from URLs, Sentinel and Cluster included: one place every connection is made.

Besides redis:// and rediss:// (as redis-py reads them), a Sentinel-managed master:

    redis+sentinel://[[user]:password@]host:26379[,host:26380…]/service[/db][?sentinel_password=…]

(rediss+sentinel:// for TLS to the master). The client asks the Sentinels for the current
master whenever it opens a connection, so after a failover a reconnect reaches the new
master: the subscription loop's ordinary reconnect is all a failover needs. And a Redis
Cluster, from any of its nodes:

    redis+cluster://[[user]:password@]host:7000[,host:7001…]   (rediss+cluster:// for TLS)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
DEFAULT_SENTINEL_PORT: Final = 26379


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    sentinel_password: str | None
    tls: bool


def parse_sentinel_url(url: str) -> SentinelTarget | None:
    """The Sentinels and master a redis+sentinel:// URL names; None for another scheme."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    sentinels = _addresses(hosts, DEFAULT_SENTINEL_PORT)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a Sentinel URL names its master: redis+sentinel://host:26379/mymaster")
    db = int(path[1]) if len(path) > 1 else 0
    query = parse_qs(parts.query)
    return SentinelTarget(
        sentinels=tuple(sentinels),
        service=unquote(path[0]),
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password", [None])[-1],
        tls=parts.scheme == "rediss+sentinel",
    )


def _addresses(hosts: str, default_port: int) -> list[tuple[str, int]]:
    addresses = []
    for host_port in hosts.split(","):
        address = urlsplit("//" + host_port.strip())
        if not address.hostname:
            raise ValueError(f"{host_port!r} in the URL names no host")
        addresses.append((address.hostname, address.port or default_port))
    return addresses


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def check_redis_url(url: str) -> str:
    """The URL, if it is one this module can connect with; ValueError saying why not."""
    parts = urlsplit(url)
    if parts.scheme in SENTINEL_SCHEMES:
        parse_sentinel_url(url)
    elif parts.scheme in CLUSTER_SCHEMES:
        _addresses(parts.netloc.rpartition("@")[2], 6379)
    elif parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"{url.split('://')[0]!r} is not a Redis URL scheme: use redis://, rediss://, "
            "unix://, redis+sentinel:// or redis+cluster://"
        )
    return url


def redis_client(url: str, **options: Any) -> Any:
    """A client for `url` (a redis.asyncio Redis, or RedisCluster for a cluster URL);
    `options` are redis-py connection options (timeouts, retry)."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        userinfo, _, hosts = parts.netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        options.pop("health_check_interval", None)  # not a cluster option
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in _addresses(hosts, 6379)],
            username=unquote(username) or None,
            password=unquote(password) or None,
            ssl=parts.scheme == "rediss+cluster",
            **options,
        )
    target = parse_sentinel_url(url)
    if target is None:
        return aioredis.from_url(url, **options)
    sentinel_options = {
        key: value
        for key, value in options.items()
        if key in ("socket_timeout", "socket_connect_timeout", "socket_keepalive")
    }
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), sentinel_kwargs=sentinel_options
    )
    master: aioredis.Redis = sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        **options,
    )
    return master
