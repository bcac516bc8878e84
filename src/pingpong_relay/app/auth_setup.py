"""The token verifier --auth jwt asks for, checked before the relay starts."""

from __future__ import annotations

from pathlib import Path

from pingpong_relay.auth import JwksKeys, TokenVerifier
from pingpong_relay.settings import Settings

__all__ = ["token_verifier"]


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier --auth jwt asks for; ValueError naming the flag when it is misconfigured."""
    if settings.auth != "jwt":
        return None
    if sum(map(bool, (settings.jwt_secret, settings.jwt_public_key, settings.jwks_url))) != 1:
        raise ValueError(
            "--auth jwt needs exactly one of --jwt-secret, --jwt-public-key and --jwks-url"
        )
    if settings.jwt_secret and len(settings.jwt_secret) < 32:
        raise ValueError("--jwt-secret must be at least 32 characters")
    public_key = None
    if settings.jwt_public_key:
        try:
            public_key = Path(settings.jwt_public_key).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"--jwt-public-key {settings.jwt_public_key}: {exc.strerror}"
            ) from None
    return TokenVerifier(
        secret=settings.jwt_secret or None,
        public_key=public_key,
        jwks=JwksKeys() if settings.jwks_url else None,
        audience=settings.jwt_audience or None,
        issuer=settings.jwt_issuer or None,
    )
