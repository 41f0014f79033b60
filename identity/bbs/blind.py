"""Blind BBS signatures (draft-irtf-cfrg-bbs-blind-signatures, as its published test vectors).

The prover commits to messages the signer never sees (``commit``), the signer checks the
commitment's proof of correctness and signs it together with its own messages
(``blind_sign``), and the prover verifies the signature (``verify``) and derives
selective-disclosure proofs over both message lists (``proof_gen`` / ``proof_verify``)::

    from identity.bbs import blind, BLS12_381_SHA_256 as suite

    commitment_with_proof, secret_prover_blind = blind.commit(suite, [b"holder secret"])
    signature = blind.blind_sign(suite, sk, pk, commitment_with_proof, header, [b"age>18"])
    assert blind.verify(suite, pk, signature, header, [b"age>18"], [b"holder secret"], secret_prover_blind)
    proof = blind.proof_gen(suite, pk, signature, header, ph, [b"age>18"], [b"holder secret"],
                            disclosed_indexes=[0], secret_prover_blind=secret_prover_blind)
    assert blind.proof_verify(suite, pk, proof, header, ph, signer_message_count=1,
                              disclosed_messages=[b"age>18"], disclosed_indexes=[0])

The interface identifier is ``ciphersuite_id || "BLIND_H2G_HM2S_"``. Generators raise
``ValueError`` (:class:`identity.bbs.core.InvalidError`) on bad arguments; ``verify`` and
``proof_verify`` return ``False`` for anything invalid and never raise on attacker bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import _blind_core as bc
from .core import MAX_MESSAGES, Ciphersuite, InvalidError, RandomScalars

BLIND_API_SUFFIX = b"BLIND_H2G_HM2S_"


def api_id(suite: Ciphersuite) -> bytes:
    """The blind interface identifier: ``ciphersuite_id || "BLIND_H2G_HM2S_"``."""
    return suite.ciphersuite_id + BLIND_API_SUFFIX


def commit(
    suite: Ciphersuite,
    committed_messages: Sequence[bytes] = (),
    *,
    random_scalars: RandomScalars | None = None,
) -> tuple[bytes, int]:
    """Commit: ``(commitment_with_proof, secret_prover_blind)`` for the prover's messages.

    Keep ``secret_prover_blind`` private: it is needed to verify the signature and to
    generate proofs. ``random_scalars`` replaces the CSPRNG (test vectors only).
    """
    messages = bc.check_messages(committed_messages, "committed_messages")
    bc.check_total(0, len(messages))
    aid = api_id(suite)
    scalars = suite.messages_to_scalars(messages, aid)
    generators = bc.blind_generators(suite, len(scalars) + 1, aid)
    return bc.core_commit(suite, generators, scalars, aid, bc.random_source(suite, random_scalars))


def blind_sign(
    suite: Ciphersuite,
    sk: bytes,
    pk: bytes,
    commitment_with_proof: bytes = b"",
    header: bytes = b"",
    messages: Sequence[bytes] = (),
) -> bytes:
    """BlindSign: a BBS signature over the signer's ``messages`` and the committed ones.

    ``sk`` is the 32-byte secret key and ``pk`` its public key. Raises ``ValueError`` when
    the commitment or its proof of correctness is invalid. An empty
    ``commitment_with_proof`` signs the signer's messages only (the prover blind is then 0).
    """
    x, pk = bc.secret_key(suite, sk, pk)
    cwp = bc.octets("commitment_with_proof", commitment_with_proof)
    header = bc.octets("header", header)
    msgs = bc.check_messages(messages, "messages")
    m = bc.committed_count(cwp)
    if m is None:
        raise InvalidError("commitment_with_proof has an impossible length")
    bc.check_total(len(msgs), m)
    aid = api_id(suite)
    generators = list(suite.create_generators(len(msgs) + 1, aid))
    blind_gens = bc.blind_generators(suite, m + 1, aid)
    commitment = bc.deserialize_and_validate_commit(suite, cwp, blind_gens, aid)
    if commitment is None:
        raise InvalidError("commitment with proof is invalid")
    scalars = suite.messages_to_scalars(msgs, aid)
    return bc.finalize_blind_sign(suite, x, pk, generators, blind_gens, header, scalars, commitment, aid)


def verify(
    suite: Ciphersuite,
    pk: bytes,
    signature: bytes,
    header: bytes = b"",
    messages: Sequence[bytes] = (),
    committed_messages: Sequence[bytes] = (),
    secret_prover_blind: int = 0,
) -> bool:
    """Verify (VerifyBlindSign): signer ``messages`` first, then the prover's committed ones.

    ``secret_prover_blind`` is the value ``commit`` returned (0 when there was no commitment).
    """
    try:
        pk = bc.octets("pk", pk)
        signature = bc.octets("signature", signature)
        header = bc.octets("header", header)
        layout = _layout(suite, messages, committed_messages, secret_prover_blind)
        return suite.core_verify(pk, signature, layout.generators, header, layout.scalars, api_id(suite))
    except (ValueError, TypeError, OverflowError):
        return False


def proof_gen(
    suite: Ciphersuite,
    pk: bytes,
    signature: bytes,
    header: bytes = b"",
    ph: bytes = b"",
    messages: Sequence[bytes] = (),
    committed_messages: Sequence[bytes] = (),
    disclosed_indexes: Sequence[int] = (),
    disclosed_commitment_indexes: Sequence[int] = (),
    secret_prover_blind: int = 0,
    *,
    random_scalars: RandomScalars | None = None,
) -> bytes:
    """BlindProofGen: a BBS proof disclosing some signer and some committed messages.

    ``disclosed_indexes`` index ``messages`` and ``disclosed_commitment_indexes`` index
    ``committed_messages`` (both strictly ascending). The prover blind is never disclosed.
    Raises ``ValueError`` if the signature does not verify. ``random_scalars`` replaces
    the CSPRNG (test vectors only).
    """
    pk = bc.octets("pk", pk)
    signature = bc.octets("signature", signature)
    header = bc.octets("header", header)
    ph = bc.octets("ph", ph)
    layout = _layout(suite, messages, committed_messages, secret_prover_blind)
    committed = len(layout.scalars) - layout.signer_count - 1
    indexes = bc.combined_indexes(
        layout.signer_count, committed, disclosed_indexes, disclosed_commitment_indexes
    )
    aid = api_id(suite)
    if not suite.core_verify(pk, signature, layout.generators, header, layout.scalars, aid):
        raise InvalidError("signature does not verify for pk, header, messages and secret_prover_blind")
    return suite.core_proof_gen(
        pk, signature, layout.generators, header, ph, layout.scalars, indexes, aid, random_scalars
    )


def proof_verify(
    suite: Ciphersuite,
    pk: bytes,
    proof: bytes,
    header: bytes = b"",
    ph: bytes = b"",
    signer_message_count: int = 0,
    disclosed_messages: Sequence[bytes] = (),
    disclosed_committed_messages: Sequence[bytes] = (),
    disclosed_indexes: Sequence[int] = (),
    disclosed_committed_indexes: Sequence[int] = (),
) -> bool:
    """BlindProofVerify. ``signer_message_count`` is L, the number of signer messages.

    The number of committed messages follows from the proof length.
    """
    try:
        pk = bc.octets("pk", pk)
        proof = bc.octets("proof", proof)
        header = bc.octets("header", header)
        ph = bc.octets("ph", ph)
        big_l = bc.check_scalar(signer_message_count, "signer_message_count", allow_zero=True)
        msgs = bc.check_messages(disclosed_messages, "disclosed_messages")
        cmsgs = bc.check_messages(disclosed_committed_messages, "disclosed_committed_messages")
        undisclosed = bc.undisclosed_count(proof)
        if undisclosed is None:
            return False
        committed = len(msgs) + len(cmsgs) + undisclosed - big_l - 1
        if committed < 0 or big_l + committed > MAX_MESSAGES:
            return False
        indexes = bc.combined_indexes(big_l, committed, disclosed_indexes, disclosed_committed_indexes)
        if len(indexes) != len(msgs) + len(cmsgs):
            return False
        aid = api_id(suite)
        generators = [
            *suite.create_generators(big_l + 1, aid),
            *bc.blind_generators(suite, committed + 1, aid),
        ]
        scalars = suite.messages_to_scalars([*msgs, *cmsgs], aid)
        return suite.core_proof_verify(pk, proof, generators, header, ph, scalars, indexes, aid)
    except (ValueError, TypeError, OverflowError):
        return False


# -- helpers ----------------------------------------------------------------------------------


def _layout(
    suite: Ciphersuite,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    secret_prover_blind: int,
) -> bc.Layout:
    msgs = bc.check_messages(messages, "messages")
    cmsgs = bc.check_messages(committed_messages, "committed_messages")
    bc.check_total(len(msgs), len(cmsgs))
    blind = bc.check_scalar(secret_prover_blind, "secret_prover_blind", allow_zero=True)
    aid = api_id(suite)
    return bc.layout(
        suite,
        suite.messages_to_scalars(msgs, aid),
        [blind, *suite.messages_to_scalars(cmsgs, aid)],
        aid,
    )


__all__ = [
    "BLIND_API_SUFFIX",
    "api_id",
    "blind_sign",
    "commit",
    "proof_gen",
    "proof_verify",
    "verify",
]
