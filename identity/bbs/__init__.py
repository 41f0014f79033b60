"""BBS signatures (IETF CFRG draft-irtf-cfrg-bbs-signatures) on BLS12-381.

    from identity import bbs
    suite = bbs.BLS12_381_SHA_256          # or bbs.BLS12_381_SHAKE_256
    sk = suite.keygen(key_material)
    pk = suite.sk_to_pk(sk)
    sig = suite.sign(sk, pk, header, messages)
    proof = suite.proof_gen(pk, sig, header, ph, messages, disclosed_indexes)
    ok = suite.proof_verify(pk, proof, header, ph, disclosed_messages, disclosed_indexes)

The core (hazmat) operations are documented in :mod:`identity.bbs.core`.
"""

from __future__ import annotations

from .backend import Backend, available_backends, default_backend_name, get_backend
from .core import (
    MAX_MESSAGES,
    PUBLIC_KEY_LENGTH,
    SECRET_KEY_LENGTH,
    SIGNATURE_LENGTH,
    Ciphersuite,
    InvalidError,
    Proof,
    ProofInitResult,
    Signature,
)
from .interface import SUITE_NAMES, BBSCiphersuite, suite_for

BLS12_381_SHA_256 = suite_for("BLS12_381_SHA_256")
BLS12_381_SHAKE_256 = suite_for("BLS12_381_SHAKE_256")

from . import blind, pseudonym  # noqa: E402  (they build on the suites above)

__all__ = [
    "BLS12_381_SHAKE_256",
    "BLS12_381_SHA_256",
    "MAX_MESSAGES",
    "PUBLIC_KEY_LENGTH",
    "SECRET_KEY_LENGTH",
    "SIGNATURE_LENGTH",
    "SUITE_NAMES",
    "BBSCiphersuite",
    "Backend",
    "Ciphersuite",
    "InvalidError",
    "Proof",
    "ProofInitResult",
    "Signature",
    "available_backends",
    "blind",
    "default_backend_name",
    "get_backend",
    "pseudonym",
    "suite_for",
]
