"""OpenID4VCI 1.0 issuer core: offers, pre-authorized codes, nonces, proofs, batch SD-JWT VC issuance.

Flow (pre-authorized code):

1. Staff create an offer for a citizen (:meth:`Issuer.create_offer`): the raw claims are stored
   with the offer; the citizen gets the credential offer (QR/link) and, out of band, a tx_code.
2. The wallet redeems the pre-authorized code + tx_code at the token endpoint
   (:meth:`Issuer.redeem_pre_authorized_code`): single use, short-lived, and a tx_code is tried at
   most ``max_tx_code_attempts`` times before the offer locks.
3. The wallet fetches a ``c_nonce`` (:meth:`Issuer.new_nonce`: stateless, see below) and sends one
   ``openid4vci-proof+jwt`` per holder key (:meth:`Issuer.issue`): it receives one single-use
   SD-JWT VC copy per key, each with its own status-list slot, so copies cannot be linked by
   signature, key or status index.

Nonces: a ``c_nonce`` is ``base64url(0x01 ‖ exp_s (8 bytes) ‖ 16 random bytes ‖ tag)`` with
``tag`` the first 16 bytes of HMAC-SHA256 under a key derived from the issuer's signing key. The
nonce endpoint writes nothing; a nonce is checked (tag, expiry) when a credential request uses it,
and only then recorded (its hash, until it expires) so it cannot be used twice.

Status: every copy of a batch shares a ``batch_id``; :meth:`Issuer.set_status` revokes or
suspends them together and :meth:`Issuer.status_list_token` serves the signed list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from identity import jose, predicates, sdjwt, status_list
from identity import tables as t
from identity.sql import Clock, system_clock_ns

__all__ = [
    "PRE_AUTH_GRANT",
    "PROOF_TYP",
    "CreatedOffer",
    "CredentialConfiguration",
    "Grant",
    "IssuanceError",
    "Issuer",
    "IssuerConfig",
    "make_proof",
]

PRE_AUTH_GRANT: Final = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
BBS_FORMAT: Final = "civitas-bbs"
BBS_PROOF_TYPE: Final = "civitas_bbs_nym"
PROOF_TYP: Final = "openid4vci-proof+jwt"
NS: Final = 1_000_000_000
STATUS_BITS: Final = 2
MAX_STATUS_LIST_ID: Final = (1 << 31) - 1  # status list ids are a 32-bit SQL INTEGER
NONCE_VERSION: Final = b"\x01"
NONCE_TAG_BYTES: Final = 16
NONCE_BYTES: Final = 1 + 8 + 16 + NONCE_TAG_BYTES
# Claims the issuer sets itself; offered claims may not use these names.
RESERVED_CLAIMS: Final = frozenset(
    {"iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub", "_sd", "_sd_alg"}
)


class IssuanceError(Exception):
    """A refused OID4VCI step; ``error`` is the protocol's error code."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class CredentialConfiguration:
    id: str
    vct: str
    display_name: str
    claims: tuple[str, ...] = ()  # raw claim names, for metadata
    derive_predicates: bool = True
    validity_s: int = 365 * 86_400
    format: str = sdjwt.DEFAULT_TYP


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    issuer_id: str  # the Credential Issuer Identifier (https URL)
    credential_endpoint: str
    nonce_endpoint: str
    token_endpoint: str
    status_list_base: str  # list URI = f"{status_list_base}/{list_id}"
    signing_jwk: Mapping[str, Any]  # private Ed25519 (or P-256) JWK
    configurations: Mapping[str, CredentialConfiguration]
    kid: str | None = None
    display_name: str = "Civitas"
    batch_size: int = 10
    offer_ttl_s: int = 600
    access_ttl_s: int = 600
    nonce_ttl_s: int = 300
    proof_max_age_s: int = 300
    max_tx_code_attempts: int = 5
    tx_code_length: int = 6
    status_list_size: int = 1 << 16
    status_list_ttl_s: int = 300
    decoys: int = 2
    bbs_key: Any = None  # identity.bbs_credentials.BBSIssuerKey, for civitas-bbs configurations
    extra_metadata: Mapping[str, Any] = field(default_factory=dict)
    # MAC key of c_nonce values; default: derived from the signing key (same in every process)
    nonce_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CreatedOffer:
    offer_id: int
    offer: dict[str, Any]  # the credential offer object (OID4VCI section 4.1.1)
    pre_authorized_code: str
    tx_code: str | None


@dataclass(frozen=True, slots=True)
class Grant:
    offer_id: int
    configuration_id: str
    expires_ns: int


def _derive_nonce_key(signing_jwk: Mapping[str, Any]) -> bytes:
    private = signing_jwk.get("d")
    if not isinstance(private, str):
        raise ValueError("the issuer's signing JWK must hold its private part (d)")
    return hmac.new(jose.b64u_decode(private), b"civitas c_nonce mac key v1", hashlib.sha256).digest()


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tx_hash(code: str, tx_code: str) -> str:
    # Bound to the high-entropy pre-authorized code, so a leaked table does not reveal tx_codes.
    return _sha256_hex(f"{code}\x00{tx_code}")


class Issuer:
    def __init__(
        self,
        engine: sa.Engine,
        config: IssuerConfig,
        *,
        clock: Clock = system_clock_ns,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        if not 1 <= config.batch_size <= 100:
            raise ValueError("batch_size must be 1..100")
        self.engine = engine
        self.config = config
        self.clock = clock
        self._today = today
        self._public_jwk = jose.public_jwk(config.signing_jwk)
        self._nonce_key = config.nonce_key or _derive_nonce_key(config.signing_jwk)
        if len(self._nonce_key) < 32:
            raise ValueError("nonce_key must be at least 32 bytes")

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self._public_jwk)

    def today(self) -> dt.date:
        if self._today is not None:
            return self._today()
        return dt.datetime.fromtimestamp(self.clock() // NS, dt.UTC).date()

    # ---------------------------------------------------------------------------------------
    # metadata

    def metadata(self) -> dict[str, Any]:
        """Credential Issuer Metadata (OID4VCI 1.0 section 12.2)."""
        c = self.config
        configs: dict[str, Any] = {}
        for conf in c.configurations.values():
            names = list(conf.claims)
            if conf.derive_predicates:
                names += [p for p in predicates.PREDICATE_CLAIMS if p not in names]
            bbs = conf.format == BBS_FORMAT
            configs[conf.id] = {
                "format": conf.format,
                "scope": conf.id,
                "vct": conf.vct,
                "cryptographic_binding_methods_supported": [BBS_PROOF_TYPE] if bbs else ["jwk"],
                "credential_signing_alg_values_supported": (
                    ["BBS-BLS12-381-SHA-256"] if bbs else [jose.default_alg(jose.load_key(c.signing_jwk))]
                ),
                "proof_types_supported": (
                    {BBS_PROOF_TYPE: {}}
                    if bbs
                    else {"jwt": {"proof_signing_alg_values_supported": ["EdDSA", "ES256"]}}
                ),
                "credential_metadata": {
                    "display": [{"name": conf.display_name, "locale": "en-US"}],
                    "claims": [{"path": [n]} for n in names],
                },
            }
        meta: dict[str, Any] = {
            "credential_issuer": c.issuer_id,
            "credential_endpoint": c.credential_endpoint,
            "nonce_endpoint": c.nonce_endpoint,
            "batch_credential_issuance": {"batch_size": c.batch_size},
            "display": [{"name": c.display_name, "locale": "en-US"}],
            "credential_configurations_supported": configs,
        }
        meta.update(c.extra_metadata)
        return meta

    # ---------------------------------------------------------------------------------------
    # offers and the pre-authorized code grant

    def create_offer(
        self,
        configuration_id: str,
        claims: Mapping[str, Any],
        *,
        subject_ref: str,
        with_tx_code: bool = True,
    ) -> CreatedOffer:
        conf = self.config.configurations.get(configuration_id)
        if conf is None:
            raise IssuanceError("unknown_credential_configuration", "no such credential configuration")
        bad = RESERVED_CLAIMS.intersection(claims)
        if bad:
            raise IssuanceError("invalid_request", f"claims may not set {sorted(bad)}")
        if conf.derive_predicates:
            try:  # malformed raw claims fail now, not at issuance
                predicates.derive(claims, today=self.today())
            except predicates.PredicateError as exc:
                raise IssuanceError("invalid_request", str(exc)) from exc
        now = self.clock()
        offer_id = uuid.uuid4().int
        code = secrets.token_urlsafe(32)
        tx_code = (
            "".join(secrets.choice("0123456789") for _ in range(self.config.tx_code_length))
            if with_tx_code
            else None
        )
        with self.engine.begin() as conn:
            conn.execute(
                t.offers.insert().values(
                    id=offer_id,
                    credential_configuration_id=configuration_id,
                    subject_ref=subject_ref,
                    claims_json=json.dumps(dict(claims), separators=(",", ":")),
                    pre_auth_code_hash=_sha256_hex(code),
                    tx_code_hash=None if tx_code is None else _tx_hash(code, tx_code),
                    tx_code_attempts=0,
                    created_ns=now,
                    expires_ns=now + self.config.offer_ttl_s * NS,
                    redeemed_ns=None,
                    access_expires_ns=None,
                    credentials_issued=0,
                )
            )
        grant: dict[str, Any] = {"pre-authorized_code": code}
        if tx_code is not None:
            grant["tx_code"] = {
                "input_mode": "numeric",
                "length": len(tx_code),
                "description": "Enter the code the city office gave you",
            }
        offer = {
            "credential_issuer": self.config.issuer_id,
            "credential_configuration_ids": [configuration_id],
            "grants": {PRE_AUTH_GRANT: grant},
        }
        return CreatedOffer(offer_id, offer, code, tx_code)

    def redeem_pre_authorized_code(self, code: str, tx_code: str | None) -> Grant:
        """Token endpoint step: single-use, short-lived code; tx_code attempts are counted."""
        if not isinstance(code, str) or not code or len(code) > 200:
            raise IssuanceError("invalid_grant", "unknown pre-authorized code")
        now = self.clock()
        code_hash = _sha256_hex(code)
        refused: IssuanceError | None = None
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    sa.select(t.offers).where(t.offers.c.pre_auth_code_hash == code_hash).with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                raise IssuanceError("invalid_grant", "unknown pre-authorized code")
            if row["redeemed_ns"] is not None:
                raise IssuanceError("invalid_grant", "pre-authorized code already used")
            if row["expires_ns"] <= now:
                raise IssuanceError("invalid_grant", "pre-authorized code expired")
            if row["tx_code_hash"] is not None:
                if row["tx_code_attempts"] >= self.config.max_tx_code_attempts:
                    raise IssuanceError("invalid_grant", "too many tx_code attempts; ask for a new offer")
                if not isinstance(tx_code, str) or not secrets.compare_digest(
                    _tx_hash(code, tx_code), row["tx_code_hash"]
                ):
                    # The attempt counter is the one change a refused request makes: it must persist.
                    conn.execute(
                        t.offers.update()
                        .where(t.offers.c.id == row["id"])
                        .values(tx_code_attempts=t.offers.c.tx_code_attempts + 1)
                    )
                    refused = IssuanceError("invalid_grant", "wrong tx_code")
            elif tx_code is not None:
                raise IssuanceError("invalid_request", "this offer has no tx_code")
            access_expires = now + self.config.access_ttl_s * NS
            if refused is None:
                conn.execute(
                    t.offers.update()
                    .where(t.offers.c.id == row["id"])
                    .values(redeemed_ns=now, access_expires_ns=access_expires)
                )
        if refused is not None:
            raise refused
        return Grant(row["id"], row["credential_configuration_id"], access_expires)

    # ---------------------------------------------------------------------------------------
    # nonces and proofs

    def new_nonce(self) -> str:
        """A fresh ``c_nonce``: authenticated and expiring, so issuing one stores nothing."""
        exp_s = self.clock() // NS + self.config.nonce_ttl_s
        body = NONCE_VERSION + exp_s.to_bytes(8, "big") + secrets.token_bytes(16)
        return jose.b64u_encode(body + self._nonce_tag(body))

    def _nonce_tag(self, body: bytes) -> bytes:
        return hmac.new(self._nonce_key, b"civitas c_nonce\x00" + body, hashlib.sha256).digest()[
            :NONCE_TAG_BYTES
        ]

    def _nonce_expiry(self, nonce: str, now: int) -> int:
        """The expiry (Unix seconds) of a nonce this issuer made and that is still valid."""
        try:
            raw = jose.b64u_decode(nonce) if isinstance(nonce, str) and len(nonce) < 100 else b""
        except jose.JoseFailure:
            raw = b""
        if len(raw) != NONCE_BYTES or raw[:1] != NONCE_VERSION:
            raise IssuanceError("invalid_nonce", "c_nonce unknown, expired or already used")
        body, tag = raw[:-NONCE_TAG_BYTES], raw[-NONCE_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._nonce_tag(body)):
            raise IssuanceError("invalid_nonce", "c_nonce unknown, expired or already used")
        exp_s = int.from_bytes(body[1:9], "big")
        if exp_s * NS <= now:
            raise IssuanceError("invalid_nonce", "c_nonce expired; fetch a new one")
        return exp_s

    def _consume_nonce(self, conn: sa.Connection, nonce: str, now: int) -> None:
        """Check the nonce and record its use (inside the issuing transaction: a refused request
        leaves the nonce usable). Records of expired nonces are dropped on the way."""
        exp_s = self._nonce_expiry(nonce, now)
        conn.execute(t.nonces.delete().where(t.nonces.c.expires_ns <= now))
        try:
            with conn.begin_nested():
                conn.execute(
                    t.nonces.insert().values(
                        nonce_hash=_sha256_hex(nonce), purpose="c_nonce", expires_ns=exp_s * NS, used_ns=now
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise IssuanceError("invalid_nonce", "c_nonce already used; fetch a new one") from exc

    def check_proof(self, proof_jwt: str, now_s: int) -> tuple[dict[str, Any], str]:
        """Validate one ``openid4vci-proof+jwt`` (signature, typ, aud, iat); returns (jwk, nonce)."""
        if not isinstance(proof_jwt, str) or proof_jwt.count(".") != 2 or len(proof_jwt) > 8192:
            raise IssuanceError("invalid_proof", "proof is not a compact JWT")
        try:
            header = json.loads(jose.b64u_decode(proof_jwt.split(".", 1)[0]))
        except (ValueError, jose.JoseFailure) as exc:
            raise IssuanceError("invalid_proof", "proof header is not JSON") from exc
        if not isinstance(header, dict) or header.get("typ") != PROOF_TYP:
            raise IssuanceError("invalid_proof", f"proof typ must be {PROOF_TYP}")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or "d" in jwk or "kid" in header:
            raise IssuanceError("invalid_proof", "proof must carry exactly one public jwk header")
        try:
            key = jose.load_key(jwk)
            if header.get("alg") not in jose.algs_for(key):
                raise IssuanceError("invalid_proof", "proof alg not accepted for its key")
            _, payload_bytes = jose.verify_compact(proof_jwt, key)
        except jose.JoseFailure as exc:
            raise IssuanceError("invalid_proof", "proof signature invalid") from exc
        try:
            payload = json.loads(payload_bytes)
        except ValueError as exc:
            raise IssuanceError("invalid_proof", "proof payload is not JSON") from exc
        if not isinstance(payload, dict):
            raise IssuanceError("invalid_proof", "proof payload must be an object")
        if payload.get("aud") != self.config.issuer_id:
            raise IssuanceError("invalid_proof", "proof aud is not this credential issuer")
        iat = payload.get("iat")
        if not isinstance(iat, int) or abs(now_s - iat) > self.config.proof_max_age_s:
            raise IssuanceError("invalid_proof", "proof iat missing or outside the accepted window")
        nonce = payload.get("nonce")
        if not isinstance(nonce, str):
            raise IssuanceError("invalid_nonce", "proof has no c_nonce")
        return jose.public_jwk(jwk), nonce

    # ---------------------------------------------------------------------------------------
    # issuance

    def _allocate_slot(self, conn: sa.Connection, now: int) -> tuple[int, int]:
        """A random free status-list slot; a list is retired once half full (herd privacy)."""
        size = self.config.status_list_size
        row = (
            conn.execute(
                sa.select(t.status_lists.c.id, t.status_lists.c.used)
                .where(t.status_lists.c.used < size // 2)
                .order_by(t.status_lists.c.id)
                .limit(1)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        if row is None:
            last = conn.execute(sa.select(sa.func.max(t.status_lists.c.id))).scalar()
            list_id = 1 if last is None else int(last) + 1
            conn.execute(
                t.status_lists.insert().values(
                    id=list_id,
                    bits=STATUS_BITS,
                    size=size,
                    used=0,
                    statuses=bytes(size * STATUS_BITS // 8),
                    updated_ns=now,
                )
            )
        else:
            list_id = int(row["id"])
        for _ in range(64):
            idx = secrets.randbelow(size)
            taken = conn.execute(
                sa.select(t.issued_credentials.c.id).where(
                    t.issued_credentials.c.status_list_id == list_id, t.issued_credentials.c.status_idx == idx
                )
            ).first()
            if taken is None:
                conn.execute(
                    t.status_lists.update()
                    .where(t.status_lists.c.id == list_id)
                    .values(used=t.status_lists.c.used + 1)
                )
                return list_id, idx
        raise IssuanceError("server_error", "could not allocate a status slot", status=500)

    def status_uri(self, list_id: int) -> str:
        return f"{self.config.status_list_base}/{list_id}"

    def issue(
        self, offer_id: int, proofs: Sequence[str], *, configuration_id: str | None = None
    ) -> list[str]:
        """Credential endpoint: one SD-JWT VC per proof (batch), all in one transaction.

        ``configuration_id`` (from the request) must be the one the offer was made for.
        """
        if not proofs:
            raise IssuanceError("invalid_proof", "at least one proof is required")
        if len(proofs) > self.config.batch_size:
            raise IssuanceError(
                "invalid_credential_request", f"at most {self.config.batch_size} proofs per request"
            )
        now = self.clock()
        now_s = now // NS
        checked = [self.check_proof(p, now_s) for p in proofs]
        nonces = {n for _, n in checked}
        if len(nonces) != 1:
            raise IssuanceError("invalid_proof", "all proofs of a batch must use the same c_nonce")
        thumbprints = [jose.load_key(jwk).thumbprint() for jwk, _ in checked]
        if len(set(thumbprints)) != len(thumbprints):
            raise IssuanceError("invalid_proof", "each copy needs its own holder key")
        with self.engine.begin() as conn:
            offer, conf = self._claim_offer(conn, offer_id, now, configuration_id)
            if conf.format == BBS_FORMAT:
                raise IssuanceError(
                    "invalid_proof", "BBS credentials are requested with civitas_bbs_nym proofs"
                )
            self._consume_nonce(conn, nonces.pop(), now)
            raw = json.loads(offer["claims_json"])
            derived = predicates.derive(raw, today=self.today()) if conf.derive_predicates else {}
            batch_id = uuid.uuid4().int
            iat = now_s - now_s % 86_400  # day granularity: issuance time is not a correlation handle
            exp = now_s + conf.validity_s
            issued: list[str] = []
            for (jwk, _), thumb in zip(checked, thumbprints, strict=True):
                list_id, idx = self._allocate_slot(conn, now)
                claims: dict[Any, Any] = {
                    "vct": conf.vct,
                    "iss": self.config.issuer_id,
                    "iat": iat,
                    "exp": exp,
                    "status": status_list.status_claim(idx, self.status_uri(list_id)),
                }
                for name, value in {**raw, **derived}.items():
                    claims[sdjwt.SD(name)] = _nested_sd(value)
                credential = sdjwt.issue(
                    claims,
                    issuer_key=self.config.signing_jwk,
                    holder_jwk=jwk,
                    kid=self.config.kid,
                    decoys=self.config.decoys,
                )
                conn.execute(
                    t.issued_credentials.insert().values(
                        id=uuid.uuid4().int,
                        batch_id=batch_id,
                        offer_id=offer_id,
                        format=conf.format,
                        vct=conf.vct,
                        status_list_id=list_id,
                        status_idx=idx,
                        status=status_list.VALID,
                        holder_key_thumbprint=thumb,
                        issued_ns=now,
                        expires_ns=exp * NS,
                    )
                )
                issued.append(credential)
            conn.execute(
                t.offers.update().where(t.offers.c.id == offer_id).values(credentials_issued=len(issued))
            )
        return issued

    def _claim_offer(
        self, conn: sa.Connection, offer_id: int, now: int, configuration_id: str | None
    ) -> tuple[sa.RowMapping, CredentialConfiguration]:
        """The redeemed, unexpired, not yet used offer behind an access token (row locked)."""
        offer = (
            conn.execute(sa.select(t.offers).where(t.offers.c.id == offer_id).with_for_update())
            .mappings()
            .first()
        )
        if offer is None or offer["redeemed_ns"] is None:
            raise IssuanceError("invalid_token", "no redeemed offer for this access token", status=401)
        if offer["access_expires_ns"] is None or offer["access_expires_ns"] <= now:
            raise IssuanceError("invalid_token", "access token expired", status=401)
        if configuration_id is not None and configuration_id != offer["credential_configuration_id"]:
            raise IssuanceError("invalid_credential_request", "this access token is for another credential")
        if offer["credentials_issued"]:
            raise IssuanceError(
                "invalid_credential_request", "credentials for this offer were already issued"
            )
        return offer, self.config.configurations[offer["credential_configuration_id"]]

    def issue_bbs(
        self, offer_id: int, commitments: Sequence[bytes], *, configuration_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Credential endpoint for BBS: blind-sign the claims against the wallet's nym commitment.

        One credential per request (BBS presentations are unlinkable, so copies are not needed).
        Like an SD-JWT copy it gets a random status-list slot; the reference is a signed message
        that the holder discloses only to verifiers that ask for it (it is a correlation handle).
        Validity is the configuration's ``validity_s`` (keep it short: it bounds how long a
        revoked credential still works where no status is asked for).
        """
        from identity import bbs_credentials as bc

        key = self.config.bbs_key
        if key is None:
            raise IssuanceError("unknown_credential_configuration", "this issuer has no BBS key")
        if len(commitments) != 1:
            raise IssuanceError("invalid_credential_request", "send exactly one nym commitment")
        now = self.clock()
        with self.engine.begin() as conn:
            offer, conf = self._claim_offer(conn, offer_id, now, configuration_id)
            if conf.format != BBS_FORMAT:
                raise IssuanceError("invalid_proof", "this credential is requested with jwt proofs")
            raw = json.loads(offer["claims_json"])
            derived = predicates.derive(raw, today=self.today()) if conf.derive_predicates else {}
            list_id, idx = self._allocate_slot(conn, now)
            try:
                issued = bc.issue(
                    {**raw, **derived},
                    key=key,
                    iss=self.config.issuer_id,
                    vct=conf.vct,
                    commitment=commitments[0],
                    now_s=now // NS,
                    validity_s=conf.validity_s,
                    status=status_list.status_claim(idx, self.status_uri(list_id)),
                )
            except bc.BBSCredentialError as exc:
                raise IssuanceError("invalid_proof", "nym commitment rejected") from exc
            conn.execute(
                t.issued_credentials.insert().values(
                    id=uuid.uuid4().int,
                    batch_id=uuid.uuid4().int,
                    offer_id=offer_id,
                    format=conf.format,
                    vct=conf.vct,
                    status_list_id=list_id,
                    status_idx=idx,
                    status=status_list.VALID,
                    holder_key_thumbprint=None,
                    issued_ns=now,
                    expires_ns=(now // NS + conf.validity_s) * NS,
                )
            )
            conn.execute(t.offers.update().where(t.offers.c.id == offer_id).values(credentials_issued=1))
        return [issued.to_json()]

    def batch_of_offer(self, offer_id: int) -> int | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(t.issued_credentials.c.batch_id)
                .where(t.issued_credentials.c.offer_id == offer_id)
                .limit(1)
            ).scalar()
        return None if value is None else int(value)

    # ---------------------------------------------------------------------------------------
    # status

    def set_status(self, batch_id: int, status: int) -> int:
        """Revoke (1) / suspend (2) / reinstate (0) every copy of a batch; returns copies changed."""
        if status not in (status_list.VALID, status_list.INVALID, status_list.SUSPENDED):
            raise IssuanceError("invalid_request", "status must be 0 (valid), 1 (invalid) or 2 (suspended)")
        now = self.clock()
        with self.engine.begin() as conn:
            rows = (
                conn.execute(
                    sa.select(t.issued_credentials).where(t.issued_credentials.c.batch_id == batch_id)
                )
                .mappings()
                .all()
            )
            if not rows:
                raise IssuanceError("not_found", "no such credential", status=404)
            if any(r["status"] == status_list.INVALID for r in rows) and status != status_list.INVALID:
                raise IssuanceError(
                    "invalid_request", "a revoked credential cannot be reinstated", status=409
                )
            for list_id in sorted({r["status_list_id"] for r in rows}):
                lrow = (
                    conn.execute(
                        sa.select(t.status_lists).where(t.status_lists.c.id == list_id).with_for_update()
                    )
                    .mappings()
                    .one()
                )
                lst = status_list.StatusList(lrow["size"], lrow["bits"], lrow["statuses"])
                for r in rows:
                    if r["status_list_id"] == list_id:
                        lst.set(r["status_idx"], status)
                conn.execute(
                    t.status_lists.update()
                    .where(t.status_lists.c.id == list_id)
                    .values(statuses=lst.to_bytes(), updated_ns=now)
                )
            conn.execute(
                t.issued_credentials.update()
                .where(t.issued_credentials.c.batch_id == batch_id)
                .values(status=status)
            )
        return len(rows)

    def status_list_token(self, list_id: int) -> str:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t.status_lists).where(t.status_lists.c.id == list_id))
                .mappings()
                .first()
            )
        if row is None:
            raise IssuanceError("not_found", "no such status list", status=404)
        lst = status_list.StatusList(row["size"], row["bits"], row["statuses"])
        now_s = self.clock() // NS
        return status_list.make_token(
            lst,
            uri=self.status_uri(list_id),
            issuer_key=self.config.signing_jwk,
            iat=now_s,
            exp=now_s + 86_400,
            ttl_s=self.config.status_list_ttl_s,
            issuer=self.config.issuer_id,
            kid=self.config.kid,
        )


def _nested_sd(value: Any) -> Any:
    """Objects get their members selectively disclosable too (e.g. address.locality alone)."""
    if isinstance(value, Mapping):
        return {sdjwt.SD(k): _nested_sd(v) for k, v in value.items()}
    return value


def make_proof(
    holder_jwk: Mapping[str, Any],
    *,
    audience: str,
    nonce: str,
    iat: int | None = None,
    client_id: str | None = None,
) -> str:
    """Wallet side: an ``openid4vci-proof+jwt`` for one holder key."""
    key = jose.load_key(holder_jwk)
    header = {"typ": PROOF_TYP, "alg": jose.default_alg(key), "jwk": jose.public_jwk(holder_jwk)}
    payload: dict[str, Any] = {
        "aud": audience,
        "iat": int(time.time()) if iat is None else iat,
        "nonce": nonce,
    }
    if client_id is not None:
        payload["iss"] = client_id
    return jose.sign_compact(header, json.dumps(payload).encode(), holder_jwk)
