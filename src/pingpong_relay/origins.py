"""Which Host and Origin headers the relay answers to: its addresses and the names it was told.

Never whatever the request claims. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = ["HostPolicy", "is_loopback", "normalise_ip", "page_origin", "split_host"]

# Names a browser uses for this machine; trusted only on a connection that arrived on a
# loopback address (a page elsewhere cannot be served from "localhost" of this machine).
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def normalise_ip(text: str) -> str | None:
    """An IP literal in canonical form ('::ffff:127.0.0.1' → '127.0.0.1'), else None."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def is_loopback(host: str) -> bool:
    """Whether a listening address or name is this machine's loopback only."""
    if host.lower() == "localhost":
        return True
    ip = normalise_ip(host)
    return ip is not None and ipaddress.ip_address(ip).is_loopback


def split_host(value: str) -> tuple[str, int | None]:
    """A Host header's name (lower-case, IPv6 unbracketed) and port; ('', None) if unusable."""
    value = value.strip()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket:
            return "", None
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_text = value.partition(":")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or len(port_text) > 5:
            return "", None
        port = int(port_text)
    return name.lower().rstrip("."), port


def page_origin(public_url: str) -> str | None:
    """The origin of a page served beside a public WebSocket URL (wss://relay.example/ws →
    https://relay.example), or None without one."""
    if not public_url:
        return None
    parts = urlsplit(public_url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}".lower()


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Who the relay believes it is, for Host (DNS rebinding) and Origin (cross-site
    WebSocket hijacking) checks.

    A Host names the relay when it is the address the connection arrived on, a loopback
    name on a loopback connection, or a name the operator listed (--allowed-host, the host
    of --public-ws-url). An Origin is allowed when it was listed (--allowed-origin, the
    public page's origin) or is the relay's own HTTP plane under such a Host.
    """

    names: frozenset[str] = frozenset()
    any_host: bool = False
    origins: frozenset[str] = frozenset()
    http_port: int = 0

    @classmethod
    def build(
        cls,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        public_ws_url: str = "",
        http_port: int = 0,
    ) -> HostPolicy:
        """The policy the operator's flags describe: --allowed-host names ("*" lets any Host
        in), --allowed-origin origins, --public-ws-url's host and page origin, and the HTTP
        plane's port (0: no HTTP plane, so no page of the relay's own)."""
        names = {split_host(h)[0] or h.lower() for h in allowed_hosts}
        origins = {o.rstrip("/").lower() for o in allowed_origins}
        public = page_origin(public_ws_url)
        if public:
            origins.add(public)
            names.add(split_host(urlsplit(public_ws_url).netloc)[0])
        names.discard("")
        return cls(frozenset(names - {"*"}), "*" in names, frozenset(origins), http_port)

    def host_allowed(self, host_header: str, local_ip: str) -> bool:
        """Whether a request's Host header names this relay, as reached at `local_ip`."""
        if self.any_host:
            return True
        name, _ = split_host(host_header)
        if not name:
            return False
        if name in self.names:
            return True
        local = normalise_ip(local_ip)
        if local is None:
            return False
        if normalise_ip(name) == local:
            return True
        return is_loopback(local) and (name in LOOPBACK_NAMES or is_loopback(name))

    def origin_allowed(self, origin: str | None, local_ip: str) -> bool:
        """Whether a browser page of this Origin may use the relay (None: not a browser)."""
        if origin is None:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            return False  # "null" (sandboxed frames, file://) and anything odd
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return False
        if not self.http_port or port != self.http_port:
            return False
        return self.host_allowed(parts.netloc, local_ip)
