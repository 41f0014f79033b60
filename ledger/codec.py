"""Canonical 128-byte encoding of a committed transfer (the Merkle log's leaf).

The layout is TigerBeetle's `Transfer` wire layout, little-endian, no padding:

    offset size field
         0   16 id                 (u128)
        16   16 debit_account_id   (u128)
        32   16 credit_account_id  (u128)
        48   16 amount             (u128)
        64   16 pending_id         (u128)
        80   16 user_data_128      (u128)
        96    8 user_data_64       (u64)
       104    4 user_data_32       (u32)
       108    4 timeout            (u32, seconds)
       112    4 ledger             (u32)
       116    2 code               (u16)
       118    2 flags              (u16)
       120    8 timestamp          (u64, ns)

A u128 is written as its low 64 bits then its high 64 bits (that is, 16 little-endian bytes).
For post/void transfers the encoded fields are the resolved ones (debit/credit account, ledger,
code and user data filled in from the pending transfer; amount as actually posted/voided).
"""

from __future__ import annotations

import struct

from .types import LedgerValueError

__all__ = ["TRANSFER_SIZE", "decode_transfer", "decode_transfers", "encode_transfer", "encode_transfers"]

TRANSFER_SIZE = 128
_M64 = (1 << 64) - 1
_FORMAT = struct.Struct("<12QQIIIHHQ")
# The same layout when every u128 field is below 2^64: its high half is zero padding.
_FORMAT_LOW = struct.Struct("<Q8xQ8xQ8xQ8xQ8xQ8xQIIIHHQ")


def encode_transfer(row: tuple[int, ...]) -> bytes:
    """Encode a transfer row (fields in `Transfer` order) into its 128 canonical bytes."""
    i, d, c, a, p, u128, u64, u32, timeout, ledger, code, flags, ts = row
    try:
        return _FORMAT.pack(
            i & _M64, i >> 64, d & _M64, d >> 64, c & _M64, c >> 64,
            a & _M64, a >> 64, p & _M64, p >> 64, u128 & _M64, u128 >> 64,
            u64, u32, timeout, ledger, code, flags, ts,
        )  # fmt: skip
    except struct.error as exc:
        raise LedgerValueError(f"transfer field out of range: {exc}") from None


def decode_transfer(data: bytes) -> tuple[int, ...]:
    """Inverse of `encode_transfer`."""
    if len(data) != TRANSFER_SIZE:
        raise LedgerValueError(f"a transfer encoding is {TRANSFER_SIZE} bytes, got {len(data)}")
    v = _FORMAT.unpack(data)
    return (
        v[0] | v[1] << 64,
        v[2] | v[3] << 64,
        v[4] | v[5] << 64,
        v[6] | v[7] << 64,
        v[8] | v[9] << 64,
        v[10] | v[11] << 64,
        *v[12:],
    )


def encode_transfers(rows: list[tuple[int, ...]]) -> list[bytes]:
    """`encode_transfer` of each row; one struct call per row when the u128 fields fit 64 bits."""
    pack = _FORMAT_LOW.pack
    try:
        return [pack(*r) for r in rows]
    except struct.error:  # a u128 field >= 2^64 (or a bad value, which encode_transfer reports)
        return [encode_transfer(r) for r in rows]


def decode_transfers(data: bytes) -> list[tuple[int, ...]]:
    """Decode concatenated encodings (a stored block) into rows."""
    if len(data) % TRANSFER_SIZE:
        raise LedgerValueError(f"a block of transfer encodings is a multiple of {TRANSFER_SIZE} bytes")
    return [decode_transfer(data[k : k + TRANSFER_SIZE]) for k in range(0, len(data), TRANSFER_SIZE)]
