"""Ed25519 verification for JWS: agrees with libsodium on honest signatures and tampering, and keeps
RFC 8032's decoding rules and libsodium's small-order refusals where ed25519-zebra (ZIP 215) relaxes
them."""

from __future__ import annotations

import hashlib
import os

import ed25519_zebra
import nacl.bindings as sodium
import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity import ed25519

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
IDENTITY = (1).to_bytes(32, "little")


def sodium_verifies(signature: bytes, message: bytes, public_key: bytes) -> bool:
    try:
        sodium.crypto_sign_open(signature + message, public_key)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def encode(y: int, sign: int = 0) -> bytes:
    return (y | sign << 255).to_bytes(32, "little")


def torsion_points() -> set[bytes]:
    """The points of order dividing 8, found independently: [L]Q for curve points Q (affine math)."""

    def add(p: tuple[int, int], q: tuple[int, int]) -> tuple[int, int]:
        t = D * p[0] * q[0] * p[1] * q[1] % P
        x = (p[0] * q[1] + q[0] * p[1]) * pow(1 + t, -1, P) % P
        return x, (p[1] * q[1] + p[0] * q[0]) * pow(1 - t, -1, P) % P

    def mul(k: int, p: tuple[int, int]) -> tuple[int, int]:
        out = (0, 1)
        while k:
            out, p, k = (add(out, p) if k & 1 else out), add(p, p), k >> 1
        return out

    found: set[bytes] = set()
    y = 2
    while len(found) < 8 and y < 500:
        xx = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
        x = pow(xx, (P + 3) // 8, P)
        if x * x % P != xx:
            x = x * pow(2, (P - 1) // 4, P) % P
        if x * x % P == xx:
            for q in ((x, y), (P - x, y)):
                t = mul(L, q)
                found.add(encode(t[1], t[0] & 1))
        y += 1
    return found


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300), flip=st.integers(0, 511))
def test_agrees_with_libsodium_on_honest_and_tampered_signatures(
    seed: bytes, message: bytes, flip: int
) -> None:
    key = nacl.signing.SigningKey(seed)
    public = bytes(key.verify_key)
    signature = key.sign(message).signature
    assert ed25519.verify(signature, message, public)
    bad = bytearray(signature)
    bad[flip // 8] ^= 1 << (flip % 8)
    assert (
        ed25519.verify(bytes(bad), message, public) is sodium_verifies(bytes(bad), message, public) is False
    )
    assert not ed25519.verify(signature, message + b"\x00", public)
    assert not ed25519.verify(signature[:63], message, public)
    assert not ed25519.verify(signature, message, public[:31])


def test_the_small_order_list_is_exactly_the_torsion_points() -> None:
    torsion = torsion_points()
    assert len(torsion) == 8
    assert {int.from_bytes(t, "little") & ((1 << 255) - 1) for t in torsion} == ed25519.SMALL_ORDER_Y
    for point in torsion:  # libsodium agrees: [8]T is the identity
        acc = point
        for _ in range(7):
            acc = sodium.crypto_core_ed25519_add(acc, point)
        assert acc == IDENTITY


def test_small_order_keys_are_refused_though_the_equation_holds() -> None:
    """With A and R of small order and S = 0 the cofactored equation holds for any message."""
    zero = bytes(32)
    for small in torsion_points():
        for commitment in torsion_points():
            signature = commitment + zero
            assert ed25519_zebra.ed_verify(signature, b"any message", small)  # the equation alone
            assert not ed25519.verify(signature, b"any message", small)


def test_non_canonical_encodings_are_refused() -> None:
    """y + p spells the same point as y; ZIP 215 accepts it, RFC 8032 decoding does not."""
    non_canonical_identity = encode(1 + P)
    signature = non_canonical_identity + bytes(32)
    assert ed25519_zebra.ed_verify(signature, b"m", non_canonical_identity)
    assert not ed25519.verify(signature, b"m", non_canonical_identity)
    assert not ed25519.verify(IDENTITY + bytes(32), b"m", non_canonical_identity)
    # the predicate: every y >= p is refused, canonical prime-order points pass
    for y in (P, P + 1, P + 18, 2**255 - 1):
        assert not ed25519.canonical_and_not_small(encode(y))
    public = bytes(nacl.signing.SigningKey(os.urandom(32)).verify_key)
    assert ed25519.canonical_and_not_small(public)


def test_s_must_be_reduced() -> None:
    key = nacl.signing.SigningKey(os.urandom(32))
    signature = key.sign(b"m").signature
    s = int.from_bytes(signature[32:], "little") + L
    assert s < 2**256
    bad = signature[:32] + s.to_bytes(32, "little")
    assert not ed25519.verify(bad, b"m", bytes(key.verify_key))
    assert not sodium_verifies(bad, b"m", bytes(key.verify_key))


def test_a_torsion_component_in_r_verifies_with_the_cofactored_equation() -> None:
    """Only the key holder can make this signature (S needs the secret scalar); RFC 8032 section
    5.1.7 accepts it, libsodium's cofactorless check does not."""
    seed = os.urandom(32)
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a = (a & ((1 << 254) - 8)) | (1 << 254)  # RFC 8032 clamping
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    order_8 = next(
        t for t in torsion_points() if int.from_bytes(t, "little") & ((1 << 255) - 1) == ed25519._Y8
    )
    r = int.from_bytes(os.urandom(64), "little") % L
    big_r = sodium.crypto_core_ed25519_add(
        sodium.crypto_scalarmult_ed25519_base_noclamp(r.to_bytes(32, "little")), order_8
    )
    message = b"mixed-order commitment"
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    signature = big_r + ((r + k * a) % L).to_bytes(32, "little")
    assert ed25519.verify(signature, message, public)
    assert not sodium_verifies(signature, message, public)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_wrong_key_lengths_never_verify(length: int) -> None:
    assert not ed25519.verify(bytes(64), b"m", bytes(length))
