"""Machinery shared by blind BBS and BBS pseudonyms.

Commitments with their proof of correctness (draft-irtf-cfrg-bbs-blind-signatures
``CoreCommit`` / ``CoreCommitVerify`` and the commitment wire format), blind signature
finalization, argument checks, and the mapping of (signer messages, committed messages,
extra prover scalars) onto one BBS generator list.

Signed scalar layout used by both interfaces (L signer messages, M committed messages,
N extra prover scalars such as pseudonym secrets)::

    generators = (Q_1, H_1, ..., H_L) || (Q_2, J_1, ..., J_{M+N})
    scalars    = (msg_1, ..., msg_L)  || (secret_prover_blind, cmsg_1, ..., cmsg_M, x_1, ..., x_N)

``(Q_1, H_i)`` come from ``create_generators(L + 1, api_id)`` and ``(Q_2, J_j)`` from
``create_generators(M + N + 1, "BLIND_" || api_id)``. A blind signature is therefore an
ordinary BBS signature over that layout, and the core verification and proof operations
apply unchanged (with the extension's ``api_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .backend import G1
from .core import (
    MAX_MESSAGES,
    PROOF_LENGTH_FLOOR,
    PUBLIC_KEY_LENGTH,
    SECRET_KEY_LENGTH,
    U64,
    Ciphersuite,
    InvalidError,
    RandomScalars,
)
from .params import CURVE_ORDER, OCTET_POINT_LENGTH, OCTET_SCALAR_LENGTH

BLIND_GENERATORS_PREFIX = b"BLIND_"
H2S_SUFFIX = b"H2S_"


@dataclass(frozen=True, slots=True)
class CommitmentWithProof:
    """A Pedersen commitment ``C`` to the prover's scalars and its Schnorr proof."""

    commitment: G1
    s_hat: int
    m_hats: tuple[int, ...]
    challenge: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Generators and scalars of one blind signature (see the module docstring)."""

    generators: list[G1]  # (Q_1, H_1..H_L, Q_2, J_1..J_{M+N})
    scalars: list[int]  # (msg_1..msg_L, secret_prover_blind, cmsg_1..cmsg_M, x_1..x_N)
    signer_count: int  # L


# -- argument checks (generators raise InvalidError, a ValueError) ----------------------------


def octets(name: str, value: object) -> bytes:
    """``value`` as ``bytes`` (bytes, bytearray or memoryview); InvalidError otherwise."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidError(f"{name} must be bytes, got {type(value).__name__}")


def check_messages(messages: object, name: str) -> list[bytes]:
    """The messages as a list of ``bytes``, at most MAX_MESSAGES of them."""
    if isinstance(messages, bytes | bytearray | memoryview | str) or not isinstance(messages, Sequence):
        raise InvalidError(f"{name} must be a sequence of bytes")
    if len(messages) > MAX_MESSAGES:
        raise InvalidError(f"{name}: at most {MAX_MESSAGES} messages are supported")
    return [octets(f"{name}[{i}]", m) for i, m in enumerate(messages)]


def check_total(signer_count: int, committed_count: int, extra_count: int = 0) -> None:
    """Enforce the core's message limit on signer + committed (+ extra prover) scalars."""
    if signer_count + committed_count + extra_count > MAX_MESSAGES:
        raise InvalidError(f"at most {MAX_MESSAGES} messages per signature")


def check_scalar(value: object, name: str, *, allow_zero: bool) -> int:
    """A scalar argument in [0, r) (or [1, r) unless ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidError(f"{name} must be an int scalar")
    if not (0 if allow_zero else 1) <= value < CURVE_ORDER:
        raise InvalidError(f"{name} out of range")
    return value


def secret_key(suite: Ciphersuite, sk: object, pk: object) -> tuple[int, bytes]:
    """``(SK as int, PK octets)`` after checking that ``pk`` is the public key of ``sk``."""
    sk_octets = octets("sk", sk)
    if len(sk_octets) != SECRET_KEY_LENGTH:
        raise InvalidError(f"sk must be {SECRET_KEY_LENGTH} bytes")
    x = check_scalar(int.from_bytes(sk_octets, "big"), "sk", allow_zero=False)
    pk_octets = octets("pk", pk)
    if len(pk_octets) != PUBLIC_KEY_LENGTH:
        raise InvalidError(f"pk must be {PUBLIC_KEY_LENGTH} bytes")
    be = suite.backend
    if be.g2_to_bytes(be.g2_mul(suite.BP2, x)) != pk_octets:
        raise InvalidError("pk is not the public key of sk")
    return x, pk_octets


def check_indexes(indexes: object, bound: int, name: str) -> list[int]:
    """Strictly ascending ints in [0, bound)."""
    if isinstance(indexes, bytes | bytearray | memoryview | str) or not isinstance(indexes, Sequence):
        raise InvalidError(f"{name} must be a sequence of integers")
    out: list[int] = []
    for i in indexes:
        if isinstance(i, bool) or not isinstance(i, int):
            raise InvalidError(f"{name} must contain integers only")
        if not 0 <= i < bound:
            raise InvalidError(f"{name}: index {i} out of range for {bound} messages")
        if out and i <= out[-1]:
            raise InvalidError(f"{name} must be strictly ascending (sorted, without duplicates)")
        out.append(i)
    return out


def combined_indexes(
    signer_count: int,
    committed_count: int,
    disclosed_indexes: Sequence[int],
    disclosed_commitment_indexes: Sequence[int],
) -> list[int]:
    """Signer indexes as is, committed index j at L + 1 + j (after the prover blind); anything
    placed after the committed messages (pseudonym secrets) is never disclosed."""
    signer = check_indexes(disclosed_indexes, signer_count, "disclosed_indexes")
    committed = check_indexes(disclosed_commitment_indexes, committed_count, "disclosed_commitment_indexes")
    return [*signer, *(signer_count + 1 + j for j in committed)]


def random_source(suite: Ciphersuite, random_scalars: RandomScalars | None) -> RandomScalars:
    """The injected random scalar source, or the suite's CSPRNG-backed one."""
    return random_scalars if random_scalars is not None else suite.calculate_random_scalars


# -- generators and layout --------------------------------------------------------------------


def committed_count(commitment_with_proof: bytes) -> int | None:
    """Number of committed scalars a serialized commitment claims (0 for ``b""``).

    None when the length cannot be the encoding of a commitment with proof.
    """
    n = len(commitment_with_proof)
    if n == 0:
        return 0
    rest = n - OCTET_POINT_LENGTH - 2 * OCTET_SCALAR_LENGTH
    if rest < 0 or rest % OCTET_SCALAR_LENGTH:
        return None
    return rest // OCTET_SCALAR_LENGTH


def undisclosed_count(proof: bytes) -> int | None:
    """U, the number of undisclosed scalars a BBS proof of this length carries (None if impossible)."""
    extra = len(proof) - PROOF_LENGTH_FLOOR
    if extra < 0 or extra % OCTET_SCALAR_LENGTH:
        return None
    return extra // OCTET_SCALAR_LENGTH


def blind_generators(suite: Ciphersuite, count: int, api_id: bytes) -> list[G1]:
    """``(Q_2, J_1, ..., J_{count-1})`` = create_generators(count, "BLIND_" || api_id)."""
    return list(suite.create_generators(count, BLIND_GENERATORS_PREFIX + api_id))


def layout(
    suite: Ciphersuite,
    message_scalars: Sequence[int],
    blind_scalars: Sequence[int],
    api_id: bytes,
) -> Layout:
    """Generators for ``message_scalars || blind_scalars`` (blind part starts with the prover blind)."""
    signer = list(suite.create_generators(len(message_scalars) + 1, api_id))
    blind = blind_generators(suite, len(blind_scalars), api_id)
    return Layout([*signer, *blind], [*message_scalars, *blind_scalars], len(message_scalars))


# -- commitment -------------------------------------------------------------------------------


def calculate_blind_challenge(
    suite: Ciphersuite, c: G1, c_bar: G1, generators: Sequence[G1], api_id: bytes
) -> int:
    """hash_to_scalar(serialize((M, Q_2, J_1..J_M, C, Cbar)), api_id || "H2S_")."""
    if not generators:
        raise InvalidError("blind challenge needs at least one generator")
    octets = suite.serialize([U64(len(generators) - 1), *generators, c, c_bar])
    return suite.hash_to_scalar(octets, api_id + H2S_SUFFIX)


def core_commit(
    suite: Ciphersuite,
    generators: Sequence[G1],
    committed_scalars: Sequence[int],
    api_id: bytes,
    random_scalars: RandomScalars,
) -> tuple[bytes, int]:
    """CoreCommit: ``(commitment_with_proof, secret_prover_blind)``."""
    m = len(committed_scalars)
    if len(generators) != m + 1:
        raise InvalidError("need exactly one blind generator more than committed scalars")
    be = suite.backend
    randoms = random_scalars(m + 2)
    if len(randoms) != m + 2:
        raise InvalidError("random scalar source returned the wrong count")
    prover_blind, s_tilde, m_tildes = randoms[0], randoms[1], randoms[2:]
    if prover_blind % CURVE_ORDER == 0:
        raise InvalidError("secret_prover_blind must not be zero")
    c = be.g1_msm(generators, [prover_blind, *committed_scalars])
    c_bar = be.g1_msm(generators, [s_tilde, *m_tildes])
    if be.g1_is_identity(c):
        raise InvalidError("commitment is the identity point")
    challenge = calculate_blind_challenge(suite, c, c_bar, generators, api_id)
    s_hat = (s_tilde + prover_blind * challenge) % CURVE_ORDER
    m_hats = tuple(
        (t + x * challenge) % CURVE_ORDER for t, x in zip(m_tildes, committed_scalars, strict=True)
    )
    proof = CommitmentWithProof(c, s_hat, m_hats, challenge)
    return commitment_with_proof_to_octets(suite, proof), prover_blind


def core_commit_verify(
    suite: Ciphersuite, proof: CommitmentWithProof, generators: Sequence[G1], api_id: bytes
) -> bool:
    """CoreCommitVerify: recompute Cbar from the responses and compare challenges."""
    if len(generators) != len(proof.m_hats) + 1:
        return False
    c_bar = suite.backend.g1_msm(
        [*generators, proof.commitment],
        [proof.s_hat, *proof.m_hats, (-proof.challenge) % CURVE_ORDER],
    )
    return calculate_blind_challenge(suite, proof.commitment, c_bar, generators, api_id) == proof.challenge


def commitment_with_proof_to_octets(suite: Ciphersuite, proof: CommitmentWithProof) -> bytes:
    """``point(C) || s^ || m^_1 .. m^_M || challenge`` (scalars 32-octet big-endian)."""
    return suite.serialize([proof.commitment, proof.s_hat, *proof.m_hats, proof.challenge])


def octets_to_commitment_with_proof(suite: Ciphersuite, octets: bytes) -> CommitmentWithProof | None:
    """Parse and range-check a serialized commitment; None when malformed."""
    count = committed_count(octets)
    if count is None or not octets:
        return None
    octets = bytes(octets)
    c = suite.backend.g1_from_bytes(octets[:OCTET_POINT_LENGTH])
    if c is None:  # not canonical, not in G1, or the identity
        return None
    scalars: list[int] = []
    for start in range(OCTET_POINT_LENGTH, len(octets), OCTET_SCALAR_LENGTH):
        s = int.from_bytes(octets[start : start + OCTET_SCALAR_LENGTH], "big")
        if s == 0 or s >= CURVE_ORDER:
            return None
        scalars.append(s)
    return CommitmentWithProof(c, scalars[0], tuple(scalars[1:-1]), scalars[-1])


def deserialize_and_validate_commit(
    suite: Ciphersuite, commitment_with_proof: bytes, generators: Sequence[G1], api_id: bytes
) -> G1 | None:
    """The verified commitment point (identity for ``b""``), or None when invalid."""
    if not commitment_with_proof:
        return suite.backend.g1_identity()
    parsed = octets_to_commitment_with_proof(suite, commitment_with_proof)
    if parsed is None or len(parsed.m_hats) + 1 != len(generators):
        return None
    if not core_commit_verify(suite, parsed, generators, api_id):
        return None
    return parsed.commitment


# -- signing ----------------------------------------------------------------------------------


def finalize_blind_sign(
    suite: Ciphersuite,
    sk: int,
    pk: bytes,
    generators: Sequence[G1],
    blind_gens: Sequence[G1],
    header: bytes,
    message_scalars: Sequence[int],
    prover_part: G1,
    api_id: bytes,
) -> bytes:
    """B_calculate + FinalizeBlindSign, as the published test vectors compute them.

    ``domain = calculate_domain(PK, Q_1, (H_1..H_L, Q_2, J_1..J_M), header)``,
    ``B = P1 + Q_1 * domain + sum(H_i * msg_i) + prover_part`` (``prover_part`` is the
    verified commitment plus any signer-side contribution to blind scalars),
    ``e = hash_to_scalar(serialize((SK, B)), api_id || "H2S_")``, ``A = B * 1/(SK + e)``.
    """
    if len(generators) != len(message_scalars) + 1 or not blind_gens:
        raise InvalidError("generator and message counts do not match")
    be = suite.backend
    q1, h = generators[0], list(generators[1:])
    domain = suite.calculate_domain(pk, q1, [*h, *blind_gens], header, api_id)
    b = be.g1_add(be.g1_msm([suite.P1, q1, *h], [1, domain, *message_scalars]), prover_part)
    if be.g1_is_identity(b):
        raise InvalidError("B is the identity point")
    e = suite.hash_to_scalar(suite.serialize([sk, b]), api_id + H2S_SUFFIX)
    denominator = (sk + e) % CURVE_ORDER
    if denominator == 0:
        raise InvalidError("SK + e is zero")
    a = be.g1_mul(b, pow(denominator, -1, CURVE_ORDER))
    return be.g1_to_bytes(a) + e.to_bytes(OCTET_SCALAR_LENGTH, "big")
