"""JWT authentication: where a token is found, what makes it valid, and what it grants (pure)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

import jwt

from pingpong_relay.subscriptions import EVENTS

__all__ = [
    "AUTH_REASONS",
    "HMAC_ALGORITHMS",
    "SCOPES",
    "SUBPROTOCOL",
    "AuthError",
    "Authenticator",
    "Grant",
    "JwksKeys",
    "Presented",
    "TokenVerifier",
    "extract_token",
    "grant_from_claims",
    "mint",
    "offered_subprotocol",
    "redact_query",
]

# Browsers cannot set headers on a WebSocket: they offer the token as a subprotocol
# "bearer.<jwt>" next to this one, which the relay echoes (never the token).
SUBPROTOCOL: Final = "pingpong.v1"
BEARER_PREFIX: Final = "bearer."
HMAC_ALGORITHMS: Final = ("HS256", "HS384", "HS512")
PUBLIC_KEY_ALGORITHMS: Final = ("RS256", "ES256")
MAX_TOKEN_CHARS: Final = 8192
# OAuth 2 style `scope` claim (space-separated); `metrics` lets a token read /metrics,
# `mute` lets it create and expire mutes (/api/mutes).
SCOPES: Final = ("metrics", "mute")
# Registered time claims must be JSON numbers: PyJWT would take "9999999999" (a string)
# and the relay would then see no expiry at all.
_TIME_CLAIMS: Final = ("exp", "nbf", "iat")
# Every reason a client's token is refused for (AuthError.reason): the label values of
# pingpong_auth_failures_total, each exported from the start so rate() sees the first.
AUTH_REASONS: Final = (
    "missing",
    "malformed",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "bad_audience",
    "bad_issuer",
    "bad_algorithm",
    "bad_claims",
    "unknown_key",
)


class AuthError(Exception):
    """A token the relay refuses; `reason` is a short code for logs and metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def body(self) -> dict[str, str]:
        """The 401 body both planes answer with: the same keys and codes for the same reason."""
        return {"error": "unauthorized", "reason": self.reason, "message": self.message}


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows: its subject, and the bots and events it may see."""

    subject: str
    bots: tuple[str, ...] | None  # None: every bot
    events: frozenset[str] | None  # None: every event
    expires_at_s: float | None
    metrics: bool = False  # the `scope` claim names "metrics": /metrics is readable
    mute: bool = False  # the `scope` claim names "mute": mutes may be created and expired


@dataclass(frozen=True, slots=True)
class Presented:
    """The token a client presented, where it was found, and the subprotocol to echo."""

    token: str | None
    source: str  # "header", "subprotocol", "query" or "none"
    echo_subprotocol: str | None


def extract_token(headers: Mapping[str, str], query: str) -> Presented:
    """The token a client presents: Authorization header, then subprotocol, then ?token=."""
    authorization = headers.get("Authorization", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("malformed", "Authorization must be 'Bearer <token>'")
        return Presented(value.strip(), "header", _echo(headers))
    offered = [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",")]
    for protocol in offered:
        if protocol.startswith(BEARER_PREFIX):
            token = protocol[len(BEARER_PREFIX) :]
            if not token:
                raise AuthError("malformed", "empty bearer subprotocol")
            if SUBPROTOCOL not in offered:
                raise AuthError(
                    "malformed",
                    f"offer the subprotocol {SUBPROTOCOL!r} next to the bearer token",
                )
            return Presented(token, "subprotocol", SUBPROTOCOL)
    tokens = parse_qs(query).get("token")
    if tokens:
        return Presented(tokens[-1], "query", _echo(headers))
    return Presented(None, "none", _echo(headers))


def offered_subprotocol(headers: Mapping[str, str]) -> str | None:
    """The subprotocol to echo when the client offers ours (with or without auth)."""
    return _echo(headers)


def _echo(headers: Mapping[str, str]) -> str | None:
    offered = [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",")]
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def redact_query(path: str) -> str:
    """A request path fit for a log line: any token= value replaced by ***."""
    head, sep, query = path.partition("?")
    if not sep:
        return path
    parts = ["token=***" if pair.split("=", 1)[0] == "token" else pair for pair in query.split("&")]
    return head + "?" + "&".join(parts)


class JwksKeys:
    """Public keys from a JWKS document, by key id; refreshed by the caller's I/O.

    The relay fetches the document off the handshake path; a token naming a key id the
    relay does not have yet is refused (and asks for a refresh, at most every few seconds).
    """

    def __init__(self) -> None:
        self._keys: dict[str | None, Any] = {}
        # Set by whoever fetches the document: called when a token needs an unknown key.
        self.refresh_requested: Callable[[], None] = lambda: None

    def load(self, document: Mapping[str, Any]) -> int:
        """Replaces the keys with those in a JWKS document; returns how many were usable."""
        try:
            keyset = jwt.PyJWKSet.from_dict(dict(document))
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a usable JWKS document: {exc}") from None
        keys = {k.key_id: k.key for k in keyset.keys}
        self._keys = keys
        return len(keys)

    def key_for(self, kid: object) -> Any:
        """The public key for a token's `kid` header (the only key, if the token names none);
        AuthError `unknown_key`, after asking for a refresh, when the relay lacks it."""
        key = self._keys.get(kid if isinstance(kid, str) else None)
        if key is None and len(self._keys) == 1 and kid is None:
            key = next(iter(self._keys.values()))  # one key, and the token names none
        if key is None:
            self.refresh_requested()
            raise AuthError("unknown_key", "the token's key id is not in the relay's JWKS")
        return key


class TokenVerifier:
    """Checks signature, algorithm, expiry, not-before, audience and issuer with PyJWT.

    Only the algorithms of the configured key type are accepted, so neither `none` nor
    an HMAC token signed with a public key (the classic confusion) can pass.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key: str | None = None,
        jwks: JwksKeys | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_s: float = 0.0,
    ) -> None:
        if sum(k is not None for k in (secret, public_key, jwks)) != 1:
            raise ValueError("give exactly one of --jwt-secret, --jwt-public-key and --jwks-url")
        self._key: Any = secret if secret is not None else public_key
        self.jwks = jwks
        self.algorithms: Sequence[str] = (
            HMAC_ALGORITHMS if secret is not None else (PUBLIC_KEY_ALGORITHMS)
        )
        self._audience = audience
        self._issuer = issuer
        self._leeway_s = leeway_s

    def verify(self, token: str | None, now_s: float) -> Grant:
        """What a valid token grants; AuthError with a short reason for any other token
        (missing, too long, malformed, wrongly signed, expired, wrong audience or issuer)."""
        del now_s  # PyJWT checks exp/nbf against the clock itself
        if not token:
            raise AuthError("missing", "no token: send Authorization: Bearer <token>")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("malformed", f"token longer than {MAX_TOKEN_CHARS} characters")
        try:
            return self._verify(token)
        except AuthError:
            raise
        except Exception:
            # Whatever PyJWT or the key library throws at a hostile token (a non-string
            # kid, a key of another type than the algorithm's, a header that is no
            # object): a refusal with a generic reason, never a 500 or the library's text.
            raise AuthError("malformed", "token refused") from None

    def _verify(self, token: str) -> Grant:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed", "not a JWT") from None
        if not isinstance(header, dict):
            raise AuthError("malformed", "not a JWT")
        if header.get("alg") not in self.algorithms:
            raise AuthError(
                "bad_algorithm",
                f"algorithm {str(header.get('alg'))[:20]!r} is not accepted here",
            )
        key = self._key
        if self.jwks is not None:
            key = self.jwks.key_for(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.algorithms),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired", "token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError(
                "not_yet_valid", "token not valid yet (nbf/iat in the future)"
            ) from None
        except jwt.InvalidAudienceError:
            raise AuthError("bad_audience", "token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("bad_issuer", "token from another issuer") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad_signature", "token signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("bad_claims", f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError("malformed", f"token refused: {type(exc).__name__}") from None
        return grant_from_claims(claims)


def grant_from_claims(claims: Mapping[str, Any]) -> Grant:
    """What verified claims grant (`sub`, `bots`, `events`, the `metrics` scope, `exp`);
    AuthError `bad_claims` when one has the wrong shape (time claims must be numbers)."""
    bots = claims.get("bots")
    events = claims.get("events")
    if bots is not None and not (
        isinstance(bots, list) and all(isinstance(b, str) and b for b in bots)
    ):
        raise AuthError("bad_claims", '"bots" claim must be a list of non-empty strings')
    if events is not None and not (isinstance(events, list) and all(e in EVENTS for e in events)):
        raise AuthError("bad_claims", f'"events" claim must list some of {", ".join(EVENTS)}')
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            raise AuthError("bad_claims", f'"{name}" claim must be a number (seconds)')
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise AuthError("bad_claims", '"scope" claim must be a space-separated string')
    expires = claims.get("exp")
    return Grant(
        subject=str(claims.get("sub")),
        bots=tuple(bots) if bots is not None else None,
        events=frozenset(events) if events is not None else None,
        expires_at_s=float(expires) if isinstance(expires, int | float) else None,
        metrics="metrics" in scope.split(),
        mute="mute" in scope.split(),
    )


def mint(
    secret: str,
    subject: str,
    *,
    now_s: float,
    ttl_s: float,
    bots: Sequence[str] | None = None,
    events: Sequence[str] | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    algorithm: str = "HS256",
    scopes: Sequence[str] = (),
) -> str:
    """A token for operators (HMAC secrets only; key pairs are minted by the key's owner)."""
    if algorithm not in HMAC_ALGORITHMS:
        raise ValueError(f"minting needs an HMAC algorithm ({', '.join(HMAC_ALGORITHMS)})")
    if not (math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError("ttl must be > 0")
    claims: dict[str, Any] = {"sub": subject, "iat": int(now_s), "exp": int(now_s + ttl_s)}
    if bots is not None:
        claims["bots"] = list(bots)
    if events is not None:
        claims["events"] = list(events)
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    if scopes:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r} (known: {', '.join(SCOPES)})")
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, secret, algorithm=algorithm)


# How a plane asks whether a request may in: given its headers and path, what the client's
# token grants (None with auth off) and the subprotocol to echo; raises AuthError to refuse.
Authenticator = Callable[[Mapping[str, str], str], tuple[Grant | None, str | None]]
