"""The server TLS context --tls-cert and --tls-key ask for."""

from __future__ import annotations

import ssl

from pingpong_relay.settings import Settings

__all__ = ["tls_context"]


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server TLS context --tls-cert/--tls-key ask for; ValueError naming the flag."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"--tls-cert/--tls-key: {exc}") from None
    return context
