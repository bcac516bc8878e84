"""The relay's own text frames, against RFC 6455's examples and a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.frames import read_text_frames, text_frame, text_payloads


def test_rfc_6455_examples() -> None:
    # §5.7: a single-frame unmasked text message "Hello".
    assert text_frame(b"Hello") == bytes.fromhex("810548656c6c6f")
    # 256 bytes: a 16-bit length; 64 KiB: a 64-bit length.
    assert text_frame(b"x" * 256)[:4] == bytes.fromhex("817e0100")
    assert text_frame(b"x" * 65536)[:10] == bytes.fromhex("817f0000000000010000")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_lengths_at_every_boundary_round_trip(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert text_payloads(text_frame(payload)) == [payload]


@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(min_value=0, max_value=50))
def test_concatenated_frames_split_back_and_a_cut_frame_waits(
    payloads: list[bytes], cut: int
) -> None:
    data = b"".join(text_frame(p) for p in payloads)
    assert text_payloads(data) == payloads
    complete, used = read_text_frames(data[: max(0, len(data) - cut)])
    assert complete == payloads[: len(complete)]
    assert used <= len(data)


def test_anything_but_unmasked_text_frames_is_refused() -> None:
    with pytest.raises(ValueError, match="unmasked final text frame"):
        text_payloads(bytes.fromhex("8185") + b"mask" + b"Hello")  # masked
    with pytest.raises(ValueError, match="truncated"):
        text_payloads(text_frame(b"Hello")[:-1])
