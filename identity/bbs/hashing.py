"""RFC 9380 message expansion and hash-to-field for BLS12-381 G1 (XMD:SHA-256 and XOF:SHAKE-256)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .params import FIELD_MODULUS

ExpandMessage = Callable[[bytes, bytes, int], bytes]

MAX_DST_BYTES = 255
MAX_EXPAND_BYTES = 65535
HASH_TO_FIELD_L = 64  # ceil((ceil(log2(p)) + k) / 8) for BLS12-381, k = 128


def _check_dst(dst: bytes) -> None:
    if len(dst) > MAX_DST_BYTES:
        raise ValueError(f"domain separation tag longer than {MAX_DST_BYTES} bytes")


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """expand_message_xmd with SHA-256 (RFC 9380 section 5.3.1)."""
    _check_dst(dst)
    b_in_bytes = 32
    ell = (len_in_bytes + b_in_bytes - 1) // b_in_bytes
    if ell > 255 or len_in_bytes > MAX_EXPAND_BYTES or len_in_bytes < 0:
        raise ValueError("expand_message_xmd: requested length too large")
    dst_prime = dst + bytes((len(dst),))
    b_0 = hashlib.sha256(bytes(64) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    b_prev = hashlib.sha256(b_0 + b"\x01" + dst_prime).digest()
    out = [b_prev]
    b0_int = int.from_bytes(b_0, "big")
    for i in range(2, ell + 1):
        mixed = (b0_int ^ int.from_bytes(b_prev, "big")).to_bytes(32, "big")
        b_prev = hashlib.sha256(mixed + bytes((i,)) + dst_prime).digest()
        out.append(b_prev)
    return b"".join(out)[:len_in_bytes]


def expand_message_xof(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """expand_message_xof with SHAKE-256 (RFC 9380 section 5.3.2)."""
    _check_dst(dst)
    if len_in_bytes > MAX_EXPAND_BYTES or len_in_bytes < 0:
        raise ValueError("expand_message_xof: requested length too large")
    dst_prime = dst + bytes((len(dst),))
    shake = hashlib.shake_256(msg + len_in_bytes.to_bytes(2, "big") + dst_prime)
    return shake.digest(len_in_bytes)


def hash_to_field_fp(expand: ExpandMessage, msg: bytes, dst: bytes, count: int = 2) -> list[int]:
    """hash_to_field for the base field of BLS12-381 (m = 1, L = 64)."""
    uniform = expand(msg, dst, count * HASH_TO_FIELD_L)
    return [
        int.from_bytes(uniform[i * HASH_TO_FIELD_L : (i + 1) * HASH_TO_FIELD_L], "big") % FIELD_MODULUS
        for i in range(count)
    ]
