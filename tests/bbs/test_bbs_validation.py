"""Argument validation and malformed inputs: verifiers return False and never raise."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity import bbs
from identity.bbs.core import MAX_MESSAGES, PROOF_LENGTH_FLOOR, InvalidError
from identity.bbs.hashing import expand_message_xmd
from identity.bbs.interface import BBSCiphersuite
from identity.bbs.params import CURVE_ORDER, FIELD_MODULUS

BACKENDS = bbs.available_backends()
P = FIELD_MODULUS
G1_IDENTITY = bytes([0xC0]) + bytes(47)
G2_IDENTITY = bytes([0xC0]) + bytes(95)
MESSAGES = [b"first", b"second", b"third", b"fourth"]
HEADER = b"civitas-test-header"
PH = b"nonce-123"


def _g1_off_subgroup() -> bytes:
    """A compressed point on E1 (y^2 = x^3 + 4) outside the order-r subgroup."""
    x = 1
    while True:
        rhs = (x**3 + 4) % P
        if pow(rhs, (P - 1) // 2, P) == 1:
            return (x | (1 << 383)).to_bytes(48, "big")
        x += 1


def _g2_off_subgroup() -> bytes:
    """A compressed point on E2 outside the order-r subgroup (py_ecc decompresses without checks)."""
    from py_ecc.bls.point_compression import decompress_G2
    from py_ecc.bls.typing import G2Compressed

    for x0 in range(1, 100):
        z1 = (1 << 383) | 1
        try:
            decompress_G2(G2Compressed((z1, x0)))
        except ValueError:
            continue
        return z1.to_bytes(48, "big") + x0.to_bytes(48, "big")
    raise AssertionError("no E2 point found")


G1_OFF = _g1_off_subgroup()
G2_OFF = _g2_off_subgroup()


@pytest.fixture(scope="module", params=BACKENDS)
def suite(request: pytest.FixtureRequest) -> BBSCiphersuite:
    return bbs.suite_for("BLS12_381_SHA_256", str(request.param))


@pytest.fixture(scope="module")
def keys(suite: BBSCiphersuite) -> tuple[bytes, bytes]:
    sk = suite.keygen(hashlib.sha256(b"validation key").digest())
    return sk, suite.sk_to_pk(sk)


@pytest.fixture(scope="module")
def signed(suite: BBSCiphersuite, keys: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    sk, pk = keys
    sig = suite.sign(sk, pk, HEADER, MESSAGES)
    proof = suite.proof_gen(pk, sig, HEADER, PH, MESSAGES, [1, 3])
    return sig, proof


# --------------------------------------------------------------------------- encodings --


def test_expand_message_xmd_rfc9380_vectors() -> None:
    dst = b"QUUX-V01-CS02-with-expander-SHA256-128"
    assert (
        expand_message_xmd(b"", dst, 0x20).hex()
        == "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"
    )
    assert (
        expand_message_xmd(b"abc", dst, 0x20).hex()
        == "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615"
    )


def test_hash_to_curve_g1_rfc9380_vector(suite: BBSCiphersuite) -> None:
    point = suite.backend.hash_to_curve_g1(
        b"abc", b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_", expand_message_xmd
    )
    assert suite.backend.g1_to_bytes(point).hex() == (
        "83567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903"
    )


@pytest.mark.parametrize(
    "data",
    [
        G1_IDENTITY,
        G1_OFF,
        bytes(48),  # compression flag missing
        bytes([0x20]) + bytes(47),
        bytes([0x60]) + bytes(47),
        bytes([0xE0]) + bytes(47),
        bytes([0xC0]) + bytes(46) + b"\x01",  # identity flag with a non-zero x
        (P | (1 << 383)).to_bytes(48, "big"),  # x = p (non-canonical)
        b"\x97" * 47,
    ],
    ids=[
        "identity",
        "off-subgroup",
        "uncompressed",
        "flags-20",
        "flags-60",
        "flags-e0",
        "identity-nonzero-x",
        "x-equals-p",
        "short",
    ],
)
def test_g1_decoding_rejects(suite: BBSCiphersuite, data: bytes) -> None:
    assert suite.backend.g1_from_bytes(data) is None


def test_g1_off_subgroup_point_is_on_curve() -> None:
    x = int.from_bytes(G1_OFF, "big") & ((1 << 381) - 1)
    assert pow((x**3 + 4) % P, (P - 1) // 2, P) == 1


@pytest.mark.parametrize(
    "data",
    [G2_IDENTITY, G2_OFF, bytes(96), b"\xa0" * 96, b"\x01" * 95],
    ids=["identity", "off-subgroup", "uncompressed", "bad-x", "short"],
)
def test_pubkey_decoding_rejects(suite: BBSCiphersuite, data: bytes) -> None:
    with pytest.raises(InvalidError):
        suite.octets_to_pubkey(data)


# ------------------------------------------------------------------------------- keys --


def test_keygen_rejects_bad_arguments(suite: BBSCiphersuite) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        suite.keygen(b"short")
    with pytest.raises(ValueError, match="key_info"):
        suite.keygen(bytes(32), bytes(65536))
    with pytest.raises(ValueError, match="bytes"):
        suite.keygen("not bytes" * 8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_dst"):
        suite.keygen(bytes(32), b"", bytes(256))


@pytest.mark.parametrize(
    "sk",
    [
        bytes(32),
        CURVE_ORDER.to_bytes(32, "big"),
        (CURVE_ORDER + 1).to_bytes(32, "big"),
        b"\xff" * 32,
        bytes(31),
    ],
    ids=["zero", "r", "r+1", "max", "short"],
)
def test_secret_key_range(suite: BBSCiphersuite, sk: bytes) -> None:
    with pytest.raises(ValueError, match="sk"):
        suite.sk_to_pk(sk)
    with pytest.raises(ValueError, match="sk"):
        suite.sign(sk, bytes(96), b"", [])


def test_sk_edges_accepted(suite: BBSCiphersuite) -> None:
    assert len(suite.sk_to_pk((1).to_bytes(32, "big"))) == 96
    assert len(suite.sk_to_pk((CURVE_ORDER - 1).to_bytes(32, "big"))) == 96


# ------------------------------------------------------------------------------- sign --


@pytest.mark.parametrize(
    "pk", [G2_IDENTITY, G2_OFF, bytes(95), bytes(97)], ids=["identity", "off-subgroup", "short", "long"]
)
def test_sign_rejects_bad_pk(suite: BBSCiphersuite, keys: tuple[bytes, bytes], pk: bytes) -> None:
    with pytest.raises(ValueError, match="pk"):
        suite.sign(keys[0], pk, b"", MESSAGES)


def test_sign_rejects_foreign_pk(suite: BBSCiphersuite, keys: tuple[bytes, bytes]) -> None:
    other = suite.sk_to_pk(suite.keygen(b"another key material, 32 bytes!!"))
    with pytest.raises(ValueError, match="not the public key"):
        suite.sign(keys[0], other, b"", MESSAGES)


def test_sign_rejects_bad_messages(suite: BBSCiphersuite, keys: tuple[bytes, bytes]) -> None:
    sk, pk = keys
    with pytest.raises(ValueError, match="sequence"):
        suite.sign(sk, pk, b"", b"not a list")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="messages\\[1\\]"):
        suite.sign(sk, pk, b"", [b"ok", "str"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="header"):
        suite.sign(sk, pk, "header", [])  # type: ignore[arg-type]


def test_message_limit_rejects_max_plus_one(suite: BBSCiphersuite, keys: tuple[bytes, bytes]) -> None:
    sk, pk = keys
    too_many = [b"m"] * (MAX_MESSAGES + 1)
    with pytest.raises(ValueError, match=f"at most {MAX_MESSAGES}"):
        suite.sign(sk, pk, b"", too_many)
    assert suite.verify(pk, bytes(80), b"", too_many) is False
    # a proof whose length claims MAX + 1 messages is refused before any curve work
    proof = bytes(PROOF_LENGTH_FLOOR + 32 * (MAX_MESSAGES + 1))
    assert suite.proof_verify(pk, proof, b"", b"", [], []) is False


def test_message_limit_accepts_max() -> None:
    suite = bbs.suite_for("BLS12_381_SHA_256", BACKENDS[0])
    sk = suite.keygen(bytes(range(32)))
    pk = suite.sk_to_pk(sk)
    messages = [i.to_bytes(2, "big") for i in range(MAX_MESSAGES)]
    sig = suite.sign(sk, pk, b"", messages)
    assert suite.verify(pk, sig, b"", messages)
    proof = suite.proof_gen(pk, sig, b"", b"", messages, [0, MAX_MESSAGES - 1])
    assert suite.proof_verify(pk, proof, b"", b"", [messages[0], messages[-1]], [0, MAX_MESSAGES - 1])


# ----------------------------------------------------------------------------- verify --


def test_verify_accepts_and_rejects(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes]
) -> None:
    pk = keys[1]
    sig, _ = signed
    assert suite.verify(pk, sig, HEADER, MESSAGES) is True
    assert suite.verify(pk, sig, HEADER + b"x", MESSAGES) is False
    assert suite.verify(pk, sig, HEADER, MESSAGES[:-1]) is False
    assert suite.verify(pk, sig, HEADER, list(reversed(MESSAGES))) is False


def _with_e(sig: bytes, e: int) -> bytes:
    return sig[:48] + e.to_bytes(32, "big")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s[:-1],
        lambda s: s + b"\x00",
        lambda s: b"",
        lambda s: _with_e(s, 0),
        lambda s: _with_e(s, CURVE_ORDER),
        lambda s: _with_e(s, 2**256 - 1),
        lambda s: G1_IDENTITY + s[48:],
        lambda s: G1_OFF + s[48:],
    ],
)
def test_verify_malformed_signature(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes], mutate: object
) -> None:
    sig, _ = signed
    bad = mutate(sig)  # type: ignore[operator]
    assert suite.verify(keys[1], bad, HEADER, MESSAGES) is False


@pytest.mark.parametrize(
    "pk",
    [G2_IDENTITY, G2_OFF, b"", bytes(96), "str"],
    ids=["identity", "off-subgroup", "empty", "zeros", "str"],
)
def test_verify_bad_pk(suite: BBSCiphersuite, signed: tuple[bytes, bytes], pk: bytes) -> None:
    sig, proof = signed
    assert suite.verify(pk, sig, HEADER, MESSAGES) is False
    assert suite.proof_verify(pk, proof, HEADER, PH, [MESSAGES[1], MESSAGES[3]], [1, 3]) is False


def test_verify_wrong_types_return_false(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes]
) -> None:
    sig, proof = signed
    pk = keys[1]
    assert suite.verify(pk, sig, HEADER, [1, 2]) is False  # type: ignore[list-item]
    assert suite.verify(pk, sig, None, MESSAGES) is False  # type: ignore[arg-type]
    assert suite.verify(pk, None, HEADER, MESSAGES) is False  # type: ignore[arg-type]
    assert suite.proof_verify(pk, proof, HEADER, PH, [MESSAGES[1], MESSAGES[3]], ["1", 3]) is False  # type: ignore[list-item]
    assert suite.proof_verify(pk, proof, HEADER, PH, [MESSAGES[1], MESSAGES[3]], None) is False  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ proofs --


@pytest.mark.parametrize(
    "indexes",
    [[3, 1], [1, 1], [0, 4], [-1], [True], [1.0], [0, 1, 2, 3, 4]],
)
def test_proof_gen_rejects_bad_indexes(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes], indexes: list[int]
) -> None:
    sig, _ = signed
    with pytest.raises(ValueError, match="disclosed"):
        suite.proof_gen(keys[1], sig, HEADER, PH, MESSAGES, indexes)


def test_proof_gen_rejects_bad_signature(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes]
) -> None:
    sig, _ = signed
    pk = keys[1]
    with pytest.raises(ValueError, match="signature"):
        suite.proof_gen(pk, _with_e(sig, 0), HEADER, PH, MESSAGES, [0])
    with pytest.raises(ValueError, match="does not verify"):
        suite.proof_gen(pk, sig, HEADER, PH, [b"other", *MESSAGES[1:]], [0])
    with pytest.raises(ValueError, match="pk"):
        suite.proof_gen(G2_IDENTITY, sig, HEADER, PH, MESSAGES, [0])


@pytest.mark.parametrize(
    ("messages", "indexes"),
    [
        ([MESSAGES[3], MESSAGES[1]], [3, 1]),  # unsorted
        ([MESSAGES[1], MESSAGES[1]], [1, 1]),  # duplicate
        ([MESSAGES[1], MESSAGES[3]], [1, 4]),  # out of range
        ([MESSAGES[1]], [1, 3]),  # count mismatch
        ([MESSAGES[1], MESSAGES[3], MESSAGES[0]], [1, 3]),
        ([MESSAGES[1], MESSAGES[2]], [1, 3]),  # wrong message
        ([MESSAGES[1], MESSAGES[3]], [1, 2]),  # wrong index
        ([MESSAGES[1], MESSAGES[3]], [-1, 3]),
    ],
)
def test_proof_verify_rejects_bad_disclosures(
    suite: BBSCiphersuite,
    keys: tuple[bytes, bytes],
    signed: tuple[bytes, bytes],
    messages: list[bytes],
    indexes: list[int],
) -> None:
    _, proof = signed
    assert suite.proof_verify(keys[1], proof, HEADER, PH, messages, indexes) is False


def test_proof_verify_accepts_and_binds_headers(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes]
) -> None:
    _, proof = signed
    pk = keys[1]
    disclosed = [MESSAGES[1], MESSAGES[3]]
    assert suite.proof_verify(pk, proof, HEADER, PH, disclosed, [1, 3]) is True
    assert suite.proof_verify(pk, proof, HEADER, PH + b"!", disclosed, [1, 3]) is False
    assert suite.proof_verify(pk, proof, b"", PH, disclosed, [1, 3]) is False


def _scalar_at(proof: bytes, index: int, value: int) -> bytes:
    start = 144 + 32 * index
    return proof[:start] + value.to_bytes(32, "big") + proof[start + 32 :]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p[:-1],
        lambda p: p[:-32],
        lambda p: p + bytes(32),
        lambda p: p[: PROOF_LENGTH_FLOOR - 32],
        lambda p: G1_IDENTITY + p[48:],
        lambda p: p[:48] + G1_IDENTITY + p[96:],
        lambda p: p[:96] + G1_OFF + p[144:],
        lambda p: _scalar_at(p, 0, 0),
        lambda p: _scalar_at(p, 1, CURVE_ORDER),
        lambda p: _scalar_at(p, 2, 2**256 - 1),
        lambda p: p[:-32] + bytes(32),  # challenge 0
    ],
)
def test_proof_verify_malformed_proof(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes], mutate: object
) -> None:
    _, proof = signed
    bad = mutate(proof)  # type: ignore[operator]
    assert suite.proof_verify(keys[1], bad, HEADER, PH, [MESSAGES[1], MESSAGES[3]], [1, 3]) is False


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_byte_flips_never_raise(
    suite: BBSCiphersuite, keys: tuple[bytes, bytes], signed: tuple[bytes, bytes], data: st.DataObject
) -> None:
    sig, proof = signed
    pk = keys[1]
    target = data.draw(st.sampled_from(["sig", "proof", "pk"]))
    original = {"sig": sig, "proof": proof, "pk": pk}[target]
    position = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    mutated = bytearray(original)
    mutated[position] ^= flip
    bad = bytes(mutated)
    if target == "sig":
        assert suite.verify(pk, bad, HEADER, MESSAGES) is False
    elif target == "proof":
        assert suite.proof_verify(pk, bad, HEADER, PH, [MESSAGES[1], MESSAGES[3]], [1, 3]) is False
    else:
        assert suite.verify(bad, sig, HEADER, MESSAGES) is False
        assert suite.proof_verify(bad, proof, HEADER, PH, [MESSAGES[1], MESSAGES[3]], [1, 3]) is False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=700), header=st.binary(max_size=8), count=st.integers(0, 3))
def test_arbitrary_bytes_never_raise(suite: BBSCiphersuite, blob: bytes, header: bytes, count: int) -> None:
    pk = blob[:96]
    msgs = [blob[i : i + 3] for i in range(count)]
    assert suite.verify(pk, blob, header, msgs) in (False, True)
    assert suite.proof_verify(pk, blob, header, b"", msgs, list(range(count))) in (False, True)
