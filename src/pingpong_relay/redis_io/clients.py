"""Redis clients from URLs (see `pingpong_relay.urls`): one place every connection is made."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from pingpong_relay.urls import CLUSTER_SCHEMES, addresses, parse_sentinel_url

__all__ = ["redis_client"]


def redis_client(url: str, **options: Any) -> Any:
    """A client for `url` (a redis.asyncio Redis, or RedisCluster for a cluster URL);
    `options` are redis-py connection options (timeouts, retry)."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        userinfo, _, hosts = parts.netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        options.pop("health_check_interval", None)  # not a cluster option
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in addresses(hosts, 6379)],
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
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8
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
