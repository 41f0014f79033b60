"""BBS per-verifier linkability: pseudonyms bound to blind BBS signatures.

draft-irtf-cfrg-bbs-per-verifier-linkability, as its published test vectors compute it
(interface ``ciphersuite_id || "H2G_HM2S_PSEUDONYM_"``)::

    from identity.bbs import pseudonym, BLS12_381_SHA_256 as suite

    # prover: secret pseudonym scalars, committed together with any hidden messages
    prover_nyms = pseudonym.generate_prover_nyms(suite)
    commitment_with_proof, secret_prover_blind = pseudonym.nym_commit(suite, prover_nyms)
    # signer: adds its entropy to the last pseudonym secret while signing
    signature, signer_nym_entropy = pseudonym.blind_sign_with_nym(
        suite, sk, pk, commitment_with_proof, nym_count=len(prover_nyms), header=header, messages=msgs)
    # prover: verify and finalize the pseudonym secrets
    nym_secrets = pseudonym.verify_finalize_with_nym(
        suite, pk, signature, header, msgs, (), prover_nyms, signer_nym_entropy, secret_prover_blind)
    # per service: the same context_id always gives the same pseudonym
    proof, nym = pseudonym.proof_gen_with_nym(suite, pk, signature, nym_secrets, b"service-a",
        header=header, messages=msgs, disclosed_indexes=[0], secret_prover_blind=secret_prover_blind)
    assert pseudonym.proof_verify_with_nym(suite, pk, proof, nym, b"service-a", nym_count=1,
        header=header, signer_message_count=len(msgs), disclosed_messages=[msgs[0]], disclosed_indexes=[0])

The pseudonym for ``context_id`` is ``OP * sum(nym_secrets[i] * z^i)`` with
``OP = hash_to_curve_g1(context_id, api_id)`` and
``z = hash_to_scalar(context_id, api_id || "VECT_NYM_SECRETS")``. Signed scalars are
``messages || (secret_prover_blind, committed_messages, nym_secrets)`` and the header is
bound to the number of pseudonym secrets (``header || I2OSP(N, 8)``).

Generators raise ``ValueError``; ``verify_with_nym`` and ``proof_verify_with_nym`` return
``False`` for anything invalid and never raise on attacker bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from . import _blind_core as bc
from .backend import G1
from .core import MAX_MESSAGES, Ciphersuite, InvalidError, ProofInitResult, RandomScalars, i2osp
from .params import CURVE_ORDER

PSEUDONYM_API_SUFFIX = b"H2G_HM2S_PSEUDONYM_"
NYM_SECRETS_DST_SUFFIX = b"VECT_NYM_SECRETS"
NYM_COUNT_OCTETS = 8
RANDOM_DRAW_ATTEMPTS = 4


class NymSignature(NamedTuple):
    """BlindSignWithNym output: the signature and the entropy the signer mixed in."""

    signature: bytes
    signer_nym_entropy: int


def api_id(suite: Ciphersuite) -> bytes:
    """The pseudonym interface identifier: ``ciphersuite_id || "H2G_HM2S_PSEUDONYM_"``."""
    return suite.ciphersuite_id + PSEUDONYM_API_SUFFIX


# -- issuance ---------------------------------------------------------------------------------


def generate_prover_nyms(suite: Ciphersuite, count: int = 1) -> list[int]:
    """``count`` fresh random non-zero prover pseudonym scalars (keep them secret)."""
    _check_nym_count(count)
    return _nonzero_scalars(suite, count)


def nym_commit(
    suite: Ciphersuite,
    prover_nyms: Sequence[int],
    committed_messages: Sequence[bytes] = (),
    *,
    random_scalars: RandomScalars | None = None,
) -> tuple[bytes, int]:
    """NymCommit (CommitWithNym): commit to hidden messages and the prover's pseudonym secrets.

    Returns ``(commitment_with_proof, secret_prover_blind)``; send the commitment and
    ``len(prover_nyms)`` to the signer, keep the rest.
    """
    nyms = _scalar_list(prover_nyms, "prover_nyms")
    _check_nym_count(len(nyms))
    msgs = bc.check_messages(committed_messages, "committed_messages")
    bc.check_total(0, len(msgs), len(nyms))
    aid = api_id(suite)
    scalars = [*suite.messages_to_scalars(msgs, aid), *nyms]
    generators = bc.blind_generators(suite, len(scalars) + 1, aid)
    return bc.core_commit(suite, generators, scalars, aid, bc.random_source(suite, random_scalars))


def blind_sign_with_nym(
    suite: Ciphersuite,
    sk: bytes,
    pk: bytes,
    commitment_with_proof: bytes,
    nym_count: int,
    header: bytes = b"",
    messages: Sequence[bytes] = (),
    *,
    signer_nym_entropy: int | None = None,
) -> NymSignature:
    """BlindSignWithNym: sign the committed pseudonym secrets, adding fresh signer entropy.

    ``nym_count`` is the length of the prover's pseudonym secret vector (sent with the
    commitment). ``signer_nym_entropy`` defaults to a fresh random scalar; pass the one of
    an earlier issuance only to re-issue the same pseudonymous identity. Raises
    ``ValueError`` when the commitment or its proof is invalid.
    """
    x, pk = bc.secret_key(suite, sk, pk)
    cwp = bc.octets("commitment_with_proof", commitment_with_proof)
    header = bc.octets("header", header)
    msgs = bc.check_messages(messages, "messages")
    n = _check_nym_count(nym_count)
    committed = bc.committed_count(cwp)
    if committed is None or not cwp:
        raise InvalidError("commitment_with_proof is missing or has an impossible length")
    if committed < n:
        raise InvalidError("the commitment holds fewer scalars than nym_count")
    bc.check_total(len(msgs), committed)
    entropy = (
        _nonzero_scalars(suite, 1)[0]
        if signer_nym_entropy is None
        else bc.check_scalar(signer_nym_entropy, "signer_nym_entropy", allow_zero=False)
    )
    aid = api_id(suite)
    generators = list(suite.create_generators(len(msgs) + 1, aid))
    blind_gens = bc.blind_generators(suite, committed + 1, aid)
    commitment = bc.deserialize_and_validate_commit(suite, cwp, blind_gens, aid)
    if commitment is None:
        raise InvalidError("commitment with proof is invalid")
    be = suite.backend
    prover_part = be.g1_add(commitment, be.g1_mul(blind_gens[-1], entropy))
    signature = bc.finalize_blind_sign(
        suite,
        x,
        pk,
        generators,
        blind_gens,
        _nym_header(header, n),
        suite.messages_to_scalars(msgs, aid),
        prover_part,
        aid,
    )
    return NymSignature(signature, entropy)


def finalize_nym_secrets(prover_nyms: Sequence[int], signer_nym_entropy: int) -> list[int]:
    """nym_secrets: the prover's scalars with the signer entropy added to the last one."""
    nyms = _scalar_list(prover_nyms, "prover_nyms")
    _check_nym_count(len(nyms))
    entropy = bc.check_scalar(signer_nym_entropy, "signer_nym_entropy", allow_zero=True)
    return [*nyms[:-1], (nyms[-1] + entropy) % CURVE_ORDER]


def verify_with_nym(
    suite: Ciphersuite,
    pk: bytes,
    signature: bytes,
    header: bytes = b"",
    messages: Sequence[bytes] = (),
    committed_messages: Sequence[bytes] = (),
    nym_secrets: Sequence[int] = (),
    secret_prover_blind: int = 0,
) -> bool:
    """VerifyWithNym: True iff ``signature`` signs messages, committed messages and nym_secrets."""
    try:
        pk = bc.octets("pk", pk)
        signature = bc.octets("signature", signature)
        header = bc.octets("header", header)
        lay = _layout(suite, messages, committed_messages, nym_secrets, secret_prover_blind)
        n = len(nym_secrets)
        return suite.core_verify(
            pk, signature, lay.generators, _nym_header(header, n), lay.scalars, api_id(suite)
        )
    except (ValueError, TypeError, OverflowError):
        return False


def verify_finalize_with_nym(
    suite: Ciphersuite,
    pk: bytes,
    signature: bytes,
    header: bytes,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    prover_nyms: Sequence[int],
    signer_nym_entropy: int,
    secret_prover_blind: int,
) -> list[int] | None:
    """VerifyFinalizeWithNym: the finalized ``nym_secrets``, or None if the signature is invalid."""
    try:
        nym_secrets = finalize_nym_secrets(prover_nyms, signer_nym_entropy)
    except (ValueError, TypeError):
        return None
    ok = verify_with_nym(
        suite, pk, signature, header, messages, committed_messages, nym_secrets, secret_prover_blind
    )
    return nym_secrets if ok else None


# -- pseudonyms and proofs --------------------------------------------------------------------


def calculate_pseudonym(suite: Ciphersuite, context_id: bytes, nym_secrets: Sequence[int]) -> bytes:
    """The 48-byte pseudonym of ``nym_secrets`` for ``context_id`` (constant per context)."""
    context_id = bc.octets("context_id", context_id)
    secrets = _scalar_list(nym_secrets, "nym_secrets")
    _check_nym_count(len(secrets))
    op, z = _context_point(suite, context_id)
    nym = suite.backend.g1_mul(op, _poly_eval(secrets, z))
    _check_pseudonym_point(suite, nym)
    return suite.backend.g1_to_bytes(nym)


def proof_gen_with_nym(
    suite: Ciphersuite,
    pk: bytes,
    signature: bytes,
    nym_secrets: Sequence[int],
    context_id: bytes,
    header: bytes = b"",
    ph: bytes = b"",
    messages: Sequence[bytes] = (),
    committed_messages: Sequence[bytes] = (),
    disclosed_indexes: Sequence[int] = (),
    disclosed_commitment_indexes: Sequence[int] = (),
    secret_prover_blind: int = 0,
    *,
    random_scalars: RandomScalars | None = None,
) -> tuple[bytes, bytes]:
    """ProofGenWithNym: ``(proof, pseudonym)`` for the verifier identified by ``context_id``.

    The proof shows knowledge of a signature over the disclosed messages and that the
    pseudonym was computed from the (never disclosed) signed pseudonym secrets. Raises
    ``ValueError`` if the signature does not verify.
    """
    pk = bc.octets("pk", pk)
    signature = bc.octets("signature", signature)
    context_id = bc.octets("context_id", context_id)
    header = bc.octets("header", header)
    ph = bc.octets("ph", ph)
    lay = _layout(suite, messages, committed_messages, nym_secrets, secret_prover_blind)
    n = len(nym_secrets)
    committed = len(lay.scalars) - lay.signer_count - 1 - n
    indexes = bc.combined_indexes(
        lay.signer_count, committed, disclosed_indexes, disclosed_commitment_indexes
    )
    aid = api_id(suite)
    nym_header = _nym_header(header, n)
    if not suite.core_verify(pk, signature, lay.generators, nym_header, lay.scalars, aid):
        raise InvalidError("signature does not verify for these messages, nym_secrets and prover blind")
    sig = suite.octets_to_signature(signature)
    disclosed = set(indexes)
    undisclosed = [j for j in range(len(lay.scalars)) if j not in disclosed]
    randoms = bc.random_source(suite, random_scalars)(5 + len(undisclosed))
    if len(randoms) != 5 + len(undisclosed):
        raise InvalidError("random scalar source returned the wrong count")
    init_res = suite.proof_init(pk, sig, lay.generators, randoms, nym_header, lay.scalars, undisclosed, aid)
    # The pseudonym secrets are the last n signed scalars, so the last n undisclosed ones.
    op, z = _context_point(suite, context_id)
    be = suite.backend
    nym = be.g1_mul(op, _poly_eval(lay.scalars[-n:], z))
    u_t = be.g1_mul(op, _poly_eval(randoms[-n:], z))
    _check_pseudonym_point(suite, nym)
    if be.g1_is_identity(u_t):
        raise InvalidError("pseudonym proof commitment is the identity point")
    disclosed_scalars = [lay.scalars[i] for i in indexes]
    challenge = _challenge(suite, init_res, disclosed_scalars, indexes, ph, nym, u_t, context_id, aid)
    proof = suite.proof_finalize(init_res, challenge, sig.e, randoms, [lay.scalars[j] for j in undisclosed])
    return proof, be.g1_to_bytes(nym)


def proof_verify_with_nym(
    suite: Ciphersuite,
    pk: bytes,
    proof: bytes,
    pseudonym: bytes,
    context_id: bytes,
    nym_count: int,
    header: bytes = b"",
    ph: bytes = b"",
    signer_message_count: int = 0,
    disclosed_messages: Sequence[bytes] = (),
    disclosed_committed_messages: Sequence[bytes] = (),
    disclosed_indexes: Sequence[int] = (),
    disclosed_committed_indexes: Sequence[int] = (),
) -> bool:
    """ProofVerifyWithNym: True iff ``proof`` is valid and ``pseudonym`` is the prover's for ``context_id``.

    ``nym_count`` is the number of pseudonym secrets the credential type uses and
    ``signer_message_count`` the number of signer messages (L).
    """
    try:
        pk = bc.octets("pk", pk)
        proof = bc.octets("proof", proof)
        pseudonym = bc.octets("pseudonym", pseudonym)
        context_id = bc.octets("context_id", context_id)
        header = bc.octets("header", header)
        ph = bc.octets("ph", ph)
        n = _check_nym_count(nym_count)
        big_l = bc.check_scalar(signer_message_count, "signer_message_count", allow_zero=True)
        msgs = bc.check_messages(disclosed_messages, "disclosed_messages")
        cmsgs = bc.check_messages(disclosed_committed_messages, "disclosed_committed_messages")
        undisclosed = bc.undisclosed_count(proof)
        if undisclosed is None:
            return False
        committed = len(msgs) + len(cmsgs) + undisclosed - big_l - 1 - n
        if committed < 0 or big_l + committed + n > MAX_MESSAGES:
            return False
        indexes = bc.combined_indexes(big_l, committed, disclosed_indexes, disclosed_committed_indexes)
        if len(indexes) != len(msgs) + len(cmsgs):
            return False
        be = suite.backend
        nym = be.g1_from_bytes(pseudonym)
        if nym is None or be.g1_eq(nym, be.g1_generator()):
            return False
        aid = api_id(suite)
        generators = [
            *suite.create_generators(big_l + 1, aid),
            *bc.blind_generators(suite, committed + n + 1, aid),
        ]
        scalars = suite.messages_to_scalars([*msgs, *cmsgs], aid)
        proof_res = suite.octets_to_proof(proof)
        w = suite.octets_to_pubkey(pk)
        # the pairing check does not depend on the challenge: start it first (see core_proof_verify)
        pairing_ok = suite.pairing_check_abar_bbar_async(proof_res.Abar, proof_res.Bbar, w)
        try:
            init_res = suite.proof_verify_init(
                pk, proof_res, generators, _nym_header(header, n), scalars, indexes, aid
            )
            op, z = _context_point(suite, context_id)
            nym_hats = proof_res.commitments[-n:]
            u_v = be.g1_msm([op, nym], [_poly_eval(nym_hats, z), (-proof_res.challenge) % CURVE_ORDER])
            challenge_ok = not be.g1_is_identity(u_v) and proof_res.challenge == _challenge(
                suite, init_res, scalars, indexes, ph, nym, u_v, context_id, aid
            )
        finally:
            pairing = pairing_ok()
        return challenge_ok and pairing
    except (ValueError, TypeError, OverflowError):
        return False


# Short names for use as ``pseudonym.commit(...)`` and so on.
commit = nym_commit
blind_sign = blind_sign_with_nym
verify = verify_with_nym
proof_gen = proof_gen_with_nym
proof_verify = proof_verify_with_nym


# -- helpers ----------------------------------------------------------------------------------


def _check_nym_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidError("nym_count must be an int")
    if not 1 <= count <= MAX_MESSAGES:
        raise InvalidError(f"nym_count must be in [1, {MAX_MESSAGES}]")
    return count


def _scalar_list(values: object, name: str) -> list[int]:
    if isinstance(values, bytes | bytearray | memoryview | str) or not isinstance(values, Sequence):
        raise InvalidError(f"{name} must be a sequence of int scalars")
    return [bc.check_scalar(v, f"{name}[{i}]", allow_zero=True) for i, v in enumerate(values)]


def _nonzero_scalars(suite: Ciphersuite, count: int) -> list[int]:
    """``count`` CSPRNG scalars, redrawing the (probability ~2^-255) zero ones a bounded number of times."""
    out: list[int] = []
    for _ in range(RANDOM_DRAW_ATTEMPTS):
        out.extend(s for s in suite.calculate_random_scalars(count - len(out)) if s)
        if len(out) == count:
            return out
    raise InvalidError("random scalar source keeps returning zero")


def _nym_header(header: bytes, nym_count: int) -> bytes:
    """header || I2OSP(N, 8): binds the pseudonym vector length to the signature."""
    return header + i2osp(nym_count, NYM_COUNT_OCTETS)


def _layout(
    suite: Ciphersuite,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    nym_secrets: Sequence[int],
    secret_prover_blind: int,
) -> bc.Layout:
    msgs = bc.check_messages(messages, "messages")
    cmsgs = bc.check_messages(committed_messages, "committed_messages")
    secrets = _scalar_list(nym_secrets, "nym_secrets")
    _check_nym_count(len(secrets))
    bc.check_total(len(msgs), len(cmsgs), len(secrets))
    blind = bc.check_scalar(secret_prover_blind, "secret_prover_blind", allow_zero=True)
    aid = api_id(suite)
    return bc.layout(
        suite,
        suite.messages_to_scalars(msgs, aid),
        [blind, *suite.messages_to_scalars(cmsgs, aid), *secrets],
        aid,
    )


@lru_cache(maxsize=256)
def _context_point(suite: Ciphersuite, context_id: bytes) -> tuple[G1, int]:
    """OP = hash_to_curve_g1(context_id, api_id) and z = hash_to_scalar(context_id, api_id || VECT_NYM_SECRETS).

    Cached: a verifier checks many proofs for its one context, so OP also gets a fixed-base table.
    """
    aid = api_id(suite)
    op = suite.hash_to_curve_g1(context_id, aid)
    suite.backend.g1_precompute(op)
    return op, suite.hash_to_scalar(context_id, aid + NYM_SECRETS_DST_SUFFIX)


def _poly_eval(coefficients: Sequence[int], z: int) -> int:
    """sum(coefficients[i] * z^i) mod r (Horner's rule)."""
    acc = 0
    for c in reversed(coefficients):
        acc = (acc * z + c) % CURVE_ORDER
    return acc


def _check_pseudonym_point(suite: Ciphersuite, nym: G1) -> None:
    be = suite.backend
    if be.g1_is_identity(nym) or be.g1_eq(nym, be.g1_generator()):
        raise InvalidError("pseudonym is the identity or the base point; use other nym secrets")


def _challenge(
    suite: Ciphersuite,
    init_res: ProofInitResult,
    disclosed_scalars: Sequence[int],
    indexes: Sequence[int],
    ph: bytes,
    nym: G1,
    u: G1,
    context_id: bytes,
    aid: bytes,
) -> int:
    """ProofWithPseudonymChallengeCalculate: the BBS challenge with (pseudonym, U) after T2
    and I2OSP(length(context_id), 8) || context_id after the presentation header."""
    return suite.proof_challenge_calculate(
        init_res,
        disclosed_scalars,
        indexes,
        ph,
        aid,
        extra_points=(nym, u),
        octets_after_ph=i2osp(len(context_id), 8) + context_id,
    )


__all__ = [
    "NYM_SECRETS_DST_SUFFIX",
    "PSEUDONYM_API_SUFFIX",
    "NymSignature",
    "api_id",
    "blind_sign",
    "blind_sign_with_nym",
    "calculate_pseudonym",
    "commit",
    "finalize_nym_secrets",
    "generate_prover_nyms",
    "nym_commit",
    "proof_gen",
    "proof_gen_with_nym",
    "proof_verify",
    "proof_verify_with_nym",
    "verify",
    "verify_finalize_with_nym",
    "verify_with_nym",
]
