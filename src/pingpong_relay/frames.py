"""WebSocket frames the relay writes itself: one text frame per message, built once (pure).

A server's frames are not masked (RFC 6455 §5.1), so a frame is a 2-10 byte header and
the payload as it is. Building it once per message, rather than once per client inside
the WebSocket library, is what lets several frames for one client go out in one write.
"""

from __future__ import annotations

from typing import Final

__all__ = ["read_text_frames", "text_frame", "text_payloads"]

_FIN_TEXT: Final = 0x81


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying `payload` (UTF-8 already)."""
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 1 << 16:
        header = bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big")
    return header + payload


def read_text_frames(data: bytes) -> tuple[list[bytes], int]:
    """The payloads of the complete unmasked text frames at the start of `data`, and how
    many bytes they took (a frame cut off at the end is left for the next read)."""
    payloads = []
    at = 0
    end = len(data)
    while at + 2 <= end:
        if data[at] != _FIN_TEXT or data[at + 1] & 0x80:
            raise ValueError(f"not an unmasked final text frame at byte {at}")
        size, start = data[at + 1] & 0x7F, at + 2
        if size == 126:
            size, start = int.from_bytes(data[start : start + 2], "big"), start + 2
        elif size == 127:
            size, start = int.from_bytes(data[start : start + 8], "big"), start + 8
        if start > end or start + size > end:
            break
        payloads.append(data[start : start + size])
        at = start + size
    return payloads, at


def text_payloads(data: bytes) -> list[bytes]:
    """The payloads of consecutive unmasked text frames: the inverse of text_frame."""
    payloads, used = read_text_frames(data)
    if used != len(data):
        raise ValueError(f"truncated frame at byte {used}")
    return payloads
