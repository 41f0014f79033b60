"""Consent receipts: Kantara Consent Receipt v1.1 claims, signed as a compact JWS (EdDSA/Ed25519).

Signing and verification go through joserfc; the signing key is an argument (`ReceiptSigner`).
One receipt is issued for every consent event (given, withdrawn, renewed, ...). Besides the
Kantara fields the claims carry ``iat``, ``jti`` (= consentReceiptID) and a ``civitas`` object
binding the receipt to the record, the DPV status and the event's index in the consent log.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from nacl.signing import SigningKey, VerifyKey

from consent.records import ConsentEvent, ConsentTerms, format_id
from consent.vocab import PURPOSE_CATEGORY

__all__ = [
    "KANTARA_VERSION",
    "ControllerInfo",
    "ReceiptError",
    "ReceiptSigner",
    "build_receipt_claims",
    "sign_receipt",
    "verify_receipt",
]

KANTARA_VERSION: Final = "KI-CR-v1.1.0"
RECEIPT_TYP: Final = "JWT"
_ALGS: Final = ["EdDSA"]

# joserfc flags the polymorphic "EdDSA" name (RFC 9864); receipts use it for interoperability.
warnings.filterwarnings("ignore", message="EdDSA is deprecated")


class ReceiptError(ValueError):
    """A receipt does not verify or is malformed."""


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class ReceiptSigner:
    """The controller's Ed25519 receipt key and its key id (a did:key verification method)."""

    signing_key: SigningKey = field(repr=False)
    kid: str

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @cached_property
    def _jwk(self) -> OKPKey:
        return OKPKey.import_key(
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "d": _b64u(bytes(self.signing_key)),
                "x": _b64u(self.public_key),
            }
        )


@dataclass(frozen=True)
class ControllerInfo:
    """Kantara `piiControllers` entry for the data controller, and its policy URL."""

    name: str = "City of Civitas"
    contact: str = "Data Protection Officer"
    address: str = "1 City Hall Square, Civitas"
    email: str = "dpo@civitas.city"
    phone: str = "+00 000 000 000"
    url: str = "https://civitas.city"
    policy_url: str = "https://civitas.city/privacy"
    collection_method: str = "Civitas wallet app: explicit opt-in per sensor stream"


def build_receipt_claims(
    *,
    record_id: int,
    terms: ConsentTerms,
    event: ConsentEvent,
    receipt_id: str,
    log_index: int,
    public_key: bytes,
    controller: ControllerInfo,
    reason: str | None = None,
) -> dict[str, Any]:
    """The receipt's claims: Kantara CR v1.1 fields plus the `civitas` binding object.

    `reason` (a revocation's stated reason, or why a superseded record ended) is carried as
    `civitas.reason` when given.
    """
    purposes_sorted = sorted(terms.purposes)
    categories = sorted(terms.categories)
    termination = f"Withdraw at any time ({terms.withdrawal_method}); otherwise ends at validity end"
    services = [
        {
            "service": recipient,
            "purposes": [
                {
                    "purpose": purpose,
                    "purposeCategory": [PURPOSE_CATEGORY.get(purpose, "Other")],
                    "consentType": "EXPLICIT",
                    "piiCategory": categories,
                    "primaryPurpose": i == 0,
                    "termination": termination,
                    "thirdPartyDisclosure": True,
                    "thirdPartyName": recipient,
                }
                for i, purpose in enumerate(purposes_sorted)
            ],
        }
        for recipient in sorted(terms.recipients)
    ]
    policy_url = (
        terms.notice.notice_id if terms.notice.notice_id.startswith("https://") else controller.policy_url
    )
    claims: dict[str, Any] = {
        "version": KANTARA_VERSION,
        "jurisdiction": terms.jurisdiction,
        "consentTimestamp": event.at_ns // 1_000_000_000,
        "collectionMethod": controller.collection_method,
        "consentReceiptID": receipt_id,
        "publicKey": _b64u(public_key),
        "language": terms.language,
        "piiPrincipalId": terms.subject,
        "piiControllers": [
            {
                "piiController": controller.name,
                "onBehalf": False,
                "contact": controller.contact,
                "address": controller.address,
                "email": controller.email,
                "phone": controller.phone,
                "piiControllerUrl": controller.url,
            }
        ],
        "policyUrl": policy_url,
        "services": services,
        "sensitive": False,
        "spiCat": [],
        "iat": event.at_ns // 1_000_000_000,
        "jti": receipt_id,
        "civitas": {
            "recordId": format_id(record_id),
            "schemaVersion": terms.schema_version,
            "status": str(event.status),
            "statusTerm": event.status.dpv,
            "eventTimeNs": event.at_ns,
            "validUntilNs": event.valid_until_ns,
            "logIndex": log_index,
            "controller": terms.controller,
            "legalBasis": terms.legal_basis,
            "retentionS": terms.retention_s,
            "notice": {
                "id": terms.notice.notice_id,
                "version": terms.notice.version,
                "sha256": terms.notice.content_sha256,
            },
        },
    }
    if reason is not None:
        claims["civitas"]["reason"] = reason
    return claims


def sign_receipt(claims: Mapping[str, Any], signer: ReceiptSigner) -> str:
    """Compact JWS over the claims with the signer's Ed25519 key."""
    header = {"alg": "EdDSA", "typ": RECEIPT_TYP, "kid": signer.kid}
    return jwt.encode(header, dict(claims), signer._jwk, algorithms=_ALGS)


def verify_receipt(token: str, public_key: bytes | VerifyKey) -> dict[str, Any]:
    """Verify a receipt with the controller's public key; returns its claims or raises ReceiptError."""
    raw = bytes(public_key)
    if len(raw) != 32:
        raise ReceiptError("an Ed25519 public key is 32 bytes")
    key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": _b64u(raw)})
    try:
        decoded = jwt.decode(token, key, algorithms=_ALGS)
    except (JoseError, ValueError) as exc:
        raise ReceiptError("receipt signature does not verify") from exc
    claims = dict(decoded.claims)
    if claims.get("version") != KANTARA_VERSION:
        raise ReceiptError("not a Kantara v1.1 consent receipt")
    return claims
