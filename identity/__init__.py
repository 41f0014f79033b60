"""Credentials: BBS signatures, SD-JWT VC, did:key, Token Status List, issuer, wallet and verifier."""

__all__: list[str] = []

# SD-JWT VC, Token Status List, DCQL and eligibility, issuer / verifier cores and the holder wallet.
from identity import (
    dcql,
    did_key,
    eligibility,
    issuer,
    predicates,
    sdjwt,
    sessions,
    status_list,
    verifier,
    wallet,
)

__all__ += [
    "dcql",
    "did_key",
    "eligibility",
    "issuer",
    "predicates",
    "sdjwt",
    "sessions",
    "status_list",
    "verifier",
    "wallet",
]
