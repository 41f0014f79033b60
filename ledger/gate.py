"""Account gate: who may open a pseudonymous ledger account, and which account id they get.

A citizen opens at most one account per service: the account id is derived from their
per-service pseudonym (`account_id_for`), so the same citizen always lands on the same account and
two services' pseudonyms (hence accounts) cannot be linked. The ledger never stores the pseudonym
itself; the account's `user_data_128` holds an owner tag (a hash) used to check ownership.

`AccountGate` is the interface the service uses; `SubjectGate` admits a caller whose access
token subject already *is* their per-service pseudonym (the service issued the token after
verifying an OpenID4VP presentation); `BbsPseudonymGate` verifies a BBS per-verifier-linkability
proof itself and admits its pseudonym.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .types import ID_MAX, LedgerError

__all__ = [
    "AccountGate",
    "Admission",
    "BbsPseudonymGate",
    "BbsPseudonymPresentation",
    "GateRefusedError",
    "SubjectGate",
    "account_id_for",
    "owner_tag",
]

_ACCOUNT_DOMAIN = b"civitas/ledger-account/v1\n"
_OWNER_DOMAIN = b"civitas/ledger-owner/v1\n"


class GateRefusedError(LedgerError):
    """The evidence does not admit an account."""


@dataclass(frozen=True, slots=True)
class Admission:
    """A verified per-service pseudonym plus the minimal claims the service needs (if any)."""

    pseudonym: bytes
    claims: dict[str, str] = field(default_factory=dict)


class AccountGate(Protocol):
    def admit(self, evidence: object) -> Admission:
        """Verify `evidence` (a token subject, a presentation, ...) or raise GateRefusedError."""
        ...


def _hash_to_id(domain: bytes, *parts: bytes) -> int:
    h = hashlib.sha256(domain)
    for p in parts:
        h.update(len(p).to_bytes(4, "big") + p)
    v = int.from_bytes(h.digest()[:16], "big")
    return v if 0 < v < ID_MAX else 1  # the reserved values are unreachable in practice


def account_id_for(pseudonym: bytes, service: str) -> int:
    """The one account id of a pseudonym at a service."""
    if not pseudonym:
        raise GateRefusedError("empty pseudonym")
    return _hash_to_id(_ACCOUNT_DOMAIN, service.encode(), pseudonym)


def owner_tag(owner: str) -> int:
    """The 128-bit tag stored in `user_data_128` of accounts owned by `owner` (a subject)."""
    return _hash_to_id(_OWNER_DOMAIN, owner.encode())


class SubjectGate:
    """Admits a token subject that is a per-service pseudonym (e.g. `nym:<base64url>`)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def admit(self, evidence: object) -> Admission:
        if (
            not isinstance(evidence, str)
            or not evidence.startswith(self.prefix)
            or len(evidence) <= len(self.prefix)
        ):
            raise GateRefusedError("the caller is not identified by a pseudonym")
        return Admission(evidence.encode())


@dataclass(frozen=True, slots=True)
class BbsPseudonymPresentation:
    proof: bytes
    pseudonym: bytes
    disclosed_messages: Sequence[bytes]
    disclosed_indexes: Sequence[int]


class BbsPseudonymGate:
    """Verifies a BBS pseudonym proof for this service's context id against a trusted issuer key."""

    def __init__(
        self,
        suite: object,
        issuer_public_key: bytes,
        context_id: bytes,
        *,
        header: bytes,
        signer_message_count: int,
        nym_count: int = 1,
    ) -> None:
        self.suite = suite
        self.issuer_public_key = issuer_public_key
        self.context_id = context_id
        self.header = header
        self.signer_message_count = signer_message_count
        self.nym_count = nym_count

    def admit(self, evidence: object) -> Admission:
        from identity.bbs import pseudonym

        if not isinstance(evidence, BbsPseudonymPresentation):
            raise GateRefusedError("expected a BBS pseudonym presentation")
        ok = pseudonym.proof_verify_with_nym(
            self.suite,  # type: ignore[arg-type]
            self.issuer_public_key,
            evidence.proof,
            evidence.pseudonym,
            self.context_id,
            nym_count=self.nym_count,
            header=self.header,
            signer_message_count=self.signer_message_count,
            disclosed_messages=list(evidence.disclosed_messages),
            disclosed_indexes=list(evidence.disclosed_indexes),
        )
        if not ok:
            raise GateRefusedError("the pseudonym proof does not verify")
        return Admission(evidence.pseudonym)
