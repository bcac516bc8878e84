"""HostPolicy: which Host and Origin headers name this relay (pure)."""

from __future__ import annotations

import pytest

from pingpong_relay.origins import HostPolicy, is_loopback, page_origin, split_host

POLICY = HostPolicy.build(
    allowed_hosts=["relay.example", "Other.Example."],
    allowed_origins=["https://ops.example/"],
    public_ws_url="wss://public.example/ws",
    http_port=2809,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("Example.COM.:80", ("example.com", 80)),
        ("[::1]:2809", ("::1", 2809)),
        ("[::1]", ("::1", None)),
        ("[::1", ("", None)),
        ("host:notaport", ("", None)),
        ("host:123456", ("", None)),
    ],
)
def test_split_host(header: str, expected: tuple[str, int | None]) -> None:
    assert split_host(header) == expected


@pytest.mark.parametrize(
    ("host", "local_ip", "allowed"),
    [
        ("127.0.0.1:2809", "127.0.0.1", True),
        ("localhost:2809", "127.0.0.1", True),
        ("[::1]:2809", "::1", True),
        ("localhost", "::ffff:127.0.0.1", True),
        ("10.0.0.5:2809", "10.0.0.5", True),  # the address the request arrived on
        ("localhost:2809", "10.0.0.5", False),  # not loopback: "localhost" is elsewhere
        ("10.0.0.6:2809", "10.0.0.5", False),
        ("evil.example:2809", "127.0.0.1", False),  # DNS rebinding
        ("relay.example", "10.0.0.5", True),
        ("other.example:443", "10.0.0.5", True),
        ("public.example", "127.0.0.1", True),  # the host of --public-ws-url
        ("", "127.0.0.1", False),
        ("[::1", "127.0.0.1", False),
    ],
)
def test_host_allowed(host: str, local_ip: str, allowed: bool) -> None:
    assert POLICY.host_allowed(host, local_ip) is allowed


@pytest.mark.parametrize(
    ("origin", "local_ip", "allowed"),
    [
        (None, "127.0.0.1", True),  # not a browser
        ("http://127.0.0.1:2809", "127.0.0.1", True),  # the dashboard
        ("http://localhost:2809", "127.0.0.1", True),
        ("https://ops.example", "127.0.0.1", True),  # listed
        ("https://public.example", "127.0.0.1", True),  # the page behind the proxy
        ("http://10.0.0.5:2809", "10.0.0.5", True),
        ("http://127.0.0.1:8080", "127.0.0.1", False),  # another server on this machine
        ("http://evil.example:2809", "127.0.0.1", False),  # DNS rebinding
        ("https://evil.example", "127.0.0.1", False),
        ("http://6.6.6.6:2809", "10.0.0.5", False),  # someone else's IP, same port
        ("null", "127.0.0.1", False),
        ("file://", "127.0.0.1", False),
        ("http://127.0.0.1:99999", "127.0.0.1", False),
    ],
)
def test_origin_allowed(origin: str | None, local_ip: str, allowed: bool) -> None:
    assert POLICY.origin_allowed(origin, local_ip) is allowed


def test_a_star_host_trusts_every_name() -> None:
    policy = HostPolicy.build(allowed_hosts=["*"], http_port=2809)
    assert policy.host_allowed("anything.example", "10.0.0.5")
    assert policy.origin_allowed("http://anything.example:2809", "10.0.0.5")
    assert not policy.origin_allowed("http://anything.example:8080", "10.0.0.5")


def test_without_an_http_plane_only_listed_origins_pass() -> None:
    policy = HostPolicy.build(allowed_origins=["https://ops.example"], http_port=0)
    assert policy.origin_allowed("https://ops.example", "127.0.0.1")
    assert not policy.origin_allowed("http://127.0.0.1:2809", "127.0.0.1")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True)],
        *[("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.com", False)],
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_page_origin() -> None:
    assert page_origin("wss://Relay.Example/ws") == "https://relay.example"
    assert page_origin("ws://relay.example:2808/") == "http://relay.example:2808"
    assert page_origin("") is None
