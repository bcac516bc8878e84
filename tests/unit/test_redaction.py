"""Secrets never reach a log line: tokens in excerpts, webhook URLs (pure)."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pingpong_relay.auth import AuthError, TokenVerifier
from pingpong_relay.messages import excerpt, redact_secrets
from pingpong_relay.urls import url_origin

TOKEN = jwt.encode({"sub": "x", "exp": 2_000_000_000}, "k" * 40, algorithm="HS256")


@pytest.mark.parametrize(
    "raw",
    [
        f'{{"action":"refresh","token":"{TOKEN}"}}',
        f'{{"action":"refresh","id":1,"token": "{TOKEN}","x":1}}',
        f"Authorization: Bearer {TOKEN}",
        f"?token={TOKEN}&x=1",
        f"{TOKEN}",
    ],
)
def test_tokens_are_redacted_from_excerpts(raw: str) -> None:
    shown = excerpt(raw.encode())
    for part in TOKEN.split("."):
        assert part not in shown
    assert "***" in shown


def test_a_token_cut_by_the_excerpts_length_is_redacted_too() -> None:
    raw = ('{"action":"refresh","id":"' + "i" * 60 + f'","token":"{TOKEN}"}}').encode()
    shown = excerpt(raw, 100)
    assert TOKEN[:20] not in shown
    assert TOKEN.split(".")[0] not in shown


def test_ordinary_payloads_are_untouched() -> None:
    raw = b'{"type":"ping","latency":10,"timestamp":1234567890,"source":"bot"}'
    assert redact_secrets(raw) == raw
    assert excerpt(raw) == raw.decode()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://discord.com/api/webhooks/123/s3cr3t", "https://discord.com"),
        ("https://hooks.slack.com/services/T0/B0/XyZ?x=1", "https://hooks.slack.com"),
        ("http://user:pw@127.0.0.1:8080/hook?key=k", "http://127.0.0.1:8080"),
        ("http://[::1]:9/a", "http://[::1]:9"),
    ],
)
def test_webhook_urls_are_logged_as_scheme_and_host(url: str, shown: str) -> None:
    assert url_origin(url) == shown


def test_hostile_token_headers_are_refusals_not_crashes() -> None:
    verifier = TokenVerifier(secret="k" * 40)
    # PyJWT will not make a token with a numeric kid; an attacker will.
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":5}').rstrip(b"=").decode()
    numeric_kid = f"{head}.{TOKEN.split('.', 1)[1]}"
    with pytest.raises(AuthError) as refused:
        verifier.verify(numeric_kid, time.time())
    assert refused.value.reason == "malformed"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    es256 = jwt.encode(
        {"sub": "x", "exp": 2_000_000_000},
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
    )
    with pytest.raises(AuthError) as mismatched:
        TokenVerifier(public_key=pem).verify(es256, time.time())
    assert mismatched.value.reason == "malformed"
    assert mismatched.value.message == "token refused"
