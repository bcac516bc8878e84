"""Token extraction and verification: every case a handshake can present."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.auth import (
    SUBPROTOCOL,
    AuthError,
    TokenVerifier,
    extract_token,
    grant_from_claims,
    mint,
    redact_query,
)

SECRET = "s3cret-key-long-enough-for-hs512-" + "k" * 40  # 64+ bytes: no PyJWT warning
NOW = time.time()
# The tokens below are made when the module is imported and checked against the clock
# when their test runs, which in a whole suite can be many minutes later: a day apart
# from now, they are still in the future (or valid) whenever the suite gets to them.
DAY_S = 86_400


def _hs(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "dashboard", "exp": int(NOW + DAY_S), **extra}


def _pem_pair(kind: str) -> tuple[Any, str]:
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.decode()


HS = TokenVerifier(secret=SECRET, audience="relay", issuer="ops")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("garbage", "malformed"),
        ("a.b.c", "malformed"),
        (_hs(_claims(aud="relay", iss="ops", exp=int(NOW) - 10)), "expired"),
        (_hs(_claims(aud="relay", iss="ops", nbf=int(NOW) + DAY_S)), "not_yet_valid"),
        (
            _hs(_claims(aud="relay", iss="ops"), secret="another-secret-of-at-least-32-bytes!"),
            "bad_signature",
        ),
        (_hs(_claims(aud="someone-else", iss="ops")), "bad_audience"),
        (_hs(_claims(aud="relay", iss="mallory")), "bad_issuer"),
        (jwt.encode(_claims(aud="relay", iss="ops"), None, algorithm="none"), "bad_algorithm"),  # type: ignore[arg-type]
        (_hs({"sub": "x", "aud": "relay", "iss": "ops"}), "bad_claims"),  # no exp
        (_hs(_claims(aud="relay", iss="ops", bots="bot:*")), "bad_claims"),
        (_hs(_claims(aud="relay", iss="ops", events=["everything"])), "bad_claims"),
        ("x" * 9000, "malformed"),
    ],
)
def test_every_bad_token_is_refused_with_its_reason(token: str | None, reason: str) -> None:
    with pytest.raises(AuthError) as refused:
        HS.verify(token, NOW)
    assert refused.value.reason == reason
    assert refused.value.message
    if token:
        assert token not in refused.value.message  # the reason, never the token


def test_a_valid_token_grants_its_scopes() -> None:
    grant = HS.verify(
        _hs(_claims(aud="relay", iss="ops", bots=["bot:gate*"], events=["pingpong"])), NOW
    )
    assert grant.subject == "dashboard"
    assert grant.bots == ("bot:gate*",)
    assert grant.events == frozenset({"pingpong"})
    assert grant.expires_at_s == int(NOW + DAY_S)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_every_hmac_algorithm_verifies(alg: str) -> None:
    verifier = TokenVerifier(secret=SECRET)
    assert verifier.verify(_hs(_claims(), alg=alg), NOW).subject == "dashboard"


@pytest.mark.parametrize(("kind", "alg"), [("rsa", "RS256"), ("ec", "ES256")])
def test_public_keys_verify_and_refuse_hmac_signed_with_the_public_key(kind: str, alg: str) -> None:
    private, public = _pem_pair(kind)
    verifier = TokenVerifier(public_key=public)
    assert verifier.verify(jwt.encode(_claims(), private, algorithm=alg), NOW).subject
    # An HMAC token is refused outright with a key pair configured, which is what stops
    # the classic confusion (an HS256 token "signed" with the public key).
    with pytest.raises(AuthError) as refused:
        verifier.verify(_hs(_claims()), NOW)
    assert refused.value.reason == "bad_algorithm"


def test_verifier_needs_exactly_one_key() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier()
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(secret="a", public_key="b")


def test_mint_makes_tokens_the_verifier_accepts_and_refuses_bad_input() -> None:
    token = mint(
        SECRET,
        "ops-1",
        now_s=time.time(),
        ttl_s=60,
        bots=["bot:a/*"],
        events=["status"],
        audience="relay",
        issuer="ops",
    )
    grant = HS.verify(token, NOW)
    assert (grant.subject, grant.bots, grant.events) == (
        "ops-1",
        ("bot:a/*",),
        frozenset({"status"}),
    )
    with pytest.raises(ValueError, match="HMAC"):
        mint(SECRET, "x", now_s=NOW, ttl_s=60, algorithm="RS256")
    with pytest.raises(ValueError, match="ttl"):
        mint(SECRET, "x", now_s=NOW, ttl_s=0)


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"Authorization": "Bearer abc.def.ghi"}, "", ("abc.def.ghi", "header", None)),
        ({"Authorization": "bearer  tok "}, "", ("tok", "header", None)),
        (
            {"Sec-WebSocket-Protocol": f"{SUBPROTOCOL}, bearer.tok"},
            "",
            ("tok", "subprotocol", SUBPROTOCOL),
        ),
        ({}, "token=abc&types=ping", ("abc", "query", None)),
        ({"Sec-WebSocket-Protocol": SUBPROTOCOL}, "", (None, "none", SUBPROTOCOL)),
        ({}, "", (None, "none", None)),
    ],
)
def test_token_extraction(
    headers: dict[str, str], query: str, expected: tuple[str | None, str, str | None]
) -> None:
    presented = extract_token(headers, query)
    assert (presented.token, presented.source, presented.echo_subprotocol) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Sec-WebSocket-Protocol": "bearer.tok"},  # without pingpong.v1 nothing to echo
        {"Sec-WebSocket-Protocol": f"{SUBPROTOCOL}, bearer."},
    ],
)
def test_malformed_presentations_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(AuthError) as refused:
        extract_token(headers, "")
    assert refused.value.reason == "malformed"


@given(
    st.dictionaries(
        st.sampled_from(["Authorization", "Sec-WebSocket-Protocol", "Origin"]),
        st.text(max_size=200),
    ),
    st.text(max_size=300),
)
def test_the_extractor_returns_or_refuses_never_crashes(
    headers: dict[str, str], query: str
) -> None:
    reason = None
    try:
        presented = extract_token(headers, query)
    except AuthError as refused:
        reason = refused.reason
    else:
        assert presented.source in ("header", "subprotocol", "query", "none")
    assert reason in (None, "malformed")


@given(st.text(max_size=500))
def test_the_verifier_refuses_arbitrary_text_with_a_reason(text: str) -> None:
    with pytest.raises(AuthError) as refused:
        HS.verify(text, NOW)
    assert refused.value.reason in ("missing", "malformed", "bad_algorithm", "bad_signature")


def test_redact_query_hides_tokens_only() -> None:
    assert redact_query("/?token=abc&types=ping") == "/?token=***&types=ping"
    assert redact_query("/?types=ping") == "/?types=ping"
    assert redact_query("/") == "/"


def test_grant_without_scopes_allows_everything() -> None:
    grant = grant_from_claims({"sub": "x", "exp": 1})
    assert grant.bots is None
    assert grant.events is None


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "x", "exp": "99999999999"},  # a string: PyJWT takes it, and it never expires
        {"sub": "x", "exp": 9e99, "nbf": "0"},
        {"sub": "x", "exp": 9e99, "iat": [1]},
        {"sub": "x", "exp": 9e99, "scope": ["metrics"]},
    ],
)
def test_time_claims_must_be_numbers_and_scope_a_string(claims: dict[str, Any]) -> None:
    with pytest.raises(AuthError) as refused:
        grant_from_claims(claims)
    assert refused.value.reason == "bad_claims"


def test_the_metrics_scope() -> None:
    assert grant_from_claims({"sub": "x", "exp": 1, "scope": "read metrics"}).metrics
    assert not grant_from_claims({"sub": "x", "exp": 1, "scope": "metricsx"}).metrics
    assert not grant_from_claims({"sub": "x", "exp": 1}).metrics
