"""URLs: which Redis URLs the relay can connect with, and URLs made fit for a log line.

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
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

__all__ = [
    "CLUSTER_SCHEMES",
    "SentinelTarget",
    "addresses",
    "check_redis_url",
    "is_cluster_url",
    "parse_sentinel_url",
    "redact_url",
    "url_origin",
]

SENTINEL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
DEFAULT_SENTINEL_PORT: Final = 26379


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """What a redis+sentinel:// URL names: the Sentinels' (host, port), the master's service
    name and db, the master's and the Sentinels' credentials, and whether to use TLS."""

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
    sentinels = addresses(hosts, DEFAULT_SENTINEL_PORT)
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


def addresses(hosts: str, default_port: int) -> list[tuple[str, int]]:
    """(host, port) pairs from "host[:port],host[:port]…": a Sentinel or Cluster URL's hosts."""
    found = []
    for host_port in hosts.split(","):
        address = urlsplit("//" + host_port.strip())
        if not address.hostname:
            raise ValueError(f"{host_port!r} in the URL names no host")
        found.append((address.hostname, address.port or default_port))
    return found


def is_cluster_url(url: str) -> bool:
    """Whether the URL names a Redis Cluster (redis+cluster:// or rediss+cluster://)."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def check_redis_url(url: str) -> str:
    """The URL, if it is one this module can connect with; ValueError saying why not."""
    parts = urlsplit(url)
    if parts.scheme in SENTINEL_SCHEMES:
        parse_sentinel_url(url)
    elif parts.scheme in CLUSTER_SCHEMES:
        addresses(parts.netloc.rpartition("@")[2], 6379)
    elif parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"{url.split('://')[0]!r} is not a Redis URL scheme: use redis://, rediss://, "
            "unix://, redis+sentinel:// or redis+cluster://"
        )
    return url


def redact_url(url: str) -> str:
    """A URL fit for a log line: any password is replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        # Keep the host exactly as written ([::1], case) and hide only the secret.
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{host}"
    query = parts.query
    if query:
        # redis-py also takes the password as ?password=… in the query string.
        pairs = [
            f"{key}=***" if key.lower() == "password" else f"{key}{sep}{value}"
            for key, sep, value in (pair.partition("=") for pair in query.split("&"))
        ]
        query = "&".join(pairs)
    if netloc == parts.netloc and query == parts.query:
        return url  # urlunsplit would normalise what needs no change (unix:/// → unix:/)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_origin(url: str) -> str:
    """Only a URL's scheme, host and port, for log lines: chat webhooks (Slack, Discord, …)
    carry their secret in the path or query, and a password may sit in the userinfo."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
