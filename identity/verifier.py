"""OpenID4VP 1.0 verifier core: DCQL requests, ``direct_post`` responses, decisions, trusted issuers.

A request carries a fresh ``nonce`` (192 bits) and ``state``. Wallets fetch it from its
``request_uri`` as a Request Object signed with the verifier's Ed25519 key; the Client Identifier
is ``decentralized_identifier:<did:key>`` (see :mod:`identity.request_object`). The wallet answers
once at the ``response_uri`` with a ``vp_token`` (an object mapping each credential query id to a list of
presentations). The verifier checks every presentation (trusted issuer allowed to issue that
``vct``, strict SD-JWT verification with this verifier's ``client_id`` as audience and the request
nonce, token status), checks the disclosed claims satisfy the DCQL query, applies the eligibility
rule if the request named one, and stores a decision record holding only the requested claims.
A second response for the same request is refused as a replay and changes nothing.

A wallet may also POST to ``request_uri`` (OpenID4VP 1.0 section 5.10, ``request_uri_method=post``)
with its ``wallet_metadata`` and a ``wallet_nonce``: the metadata is checked against what the
request needs (never stored: it could fingerprint the wallet) and the nonce is signed into the
Request Object.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from identity import dcql, did_key, eligibility, jose, request_object, sdjwt, status_list
from identity import tables as t
from identity.sql import Clock, system_clock_ns

__all__ = [
    "MAX_WALLET_METADATA_CHARS",
    "Decision",
    "EligibilityRules",
    "PresentationRequest",
    "TrustedIssuer",
    "TrustedIssuers",
    "Verifier",
    "VerifierConfig",
    "VerifierError",
]

NS: Final = 1_000_000_000
MAX_VP_TOKEN_CHARS: Final = 512 * 1024
MAX_WALLET_METADATA_CHARS: Final = 8 * 1024
SD_JWT_ALG_VALUES: Final = ("EdDSA", "ES256")  # issuer and KB-JWT signatures this verifier checks
STATUS_CLAIM: Final = "status"  # the Token Status List reference; verified, never passed on
PresentationCheck = Callable[["PresentationRequest", dcql.CredentialQuery, str], "VerifiedPresentation"]


class VerifierError(Exception):
    """A request that cannot be handled at all (unknown id/state, replay, malformed input)."""

    def __init__(self, code: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# trusted issuers and rules


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    issuer_id: str
    public_key: Mapping[str, Any] | None  # public JWK for SD-JWT VCs (Ed25519 or P-256)
    vct_values: tuple[str, ...]
    bbs_did: str | None = None  # did:key of the BLS12-381 G2 key for BBS credentials
    previous_keys: tuple[Mapping[str, Any], ...] = ()  # retired JWKs, still valid for what they signed

    def jwk_for(self, kid: Any) -> Mapping[str, Any] | None:
        """The key a credential names by ``kid`` (current or retired); the current key without one."""
        if self.public_key is None:
            return None
        if kid is None or self.public_key.get("kid") in (None, kid):
            return self.public_key
        for key in self.previous_keys:
            if key.get("kid") == kid:
                return key
        return self.public_key


class TrustedIssuers:
    """Registry of issuer keys and the credential types each may issue."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = system_clock_ns) -> None:
        self.engine = engine
        self.clock = clock

    def register(
        self,
        issuer_id: str,
        public_key: Mapping[str, Any] | None,
        vct_values: Sequence[str],
        *,
        bbs_did: str | None = None,
        previous_keys: Sequence[Mapping[str, Any]] = (),
    ) -> TrustedIssuer:
        """Trust ``issuer_id`` (its JWK and/or BBS did:key) for the listed credential types.

        ``previous_keys`` are retired JWKs (with ``kid``) that still verify what they signed.
        """
        if not issuer_id or len(issuer_id) > 200:
            raise VerifierError("invalid_request", "issuer id must be 1-200 characters")
        if not vct_values or any(not isinstance(v, str) for v in vct_values):
            raise VerifierError("invalid_request", "vct_values must be a non-empty list of strings")
        if public_key is None and bbs_did is None:
            raise VerifierError("invalid_request", "give a JWK, a BBS did:key, or both")
        key: dict[str, Any] | None = None
        if public_key is not None:
            if "d" in public_key:
                raise VerifierError("invalid_request", "register the public key only")
            try:
                key = jose.public_jwk(public_key)
            except jose.JoseFailure as exc:
                raise VerifierError("invalid_request", f"issuer key: {exc}") from exc
        if bbs_did is not None:
            try:
                if did_key.decode(bbs_did).key_type != "Bls12381G2":
                    raise VerifierError("invalid_request", "a BBS issuer key is a BLS12-381 G2 did:key")
            except did_key.DidKeyError as exc:
                raise VerifierError("invalid_request", f"BBS key: {exc}") from exc
        previous: list[dict[str, Any]] = []
        for old in previous_keys:
            if "d" in old:
                raise VerifierError("invalid_request", "register public keys only")
            try:
                previous.append(jose.public_jwk(old))
            except jose.JoseFailure as exc:
                raise VerifierError("invalid_request", f"previous issuer key: {exc}") from exc
        values = {
            "public_key_json": json.dumps(
                {"jwk": key, "bbs_did": bbs_did, "previous": previous}, sort_keys=True
            ),
            "vct_values_json": json.dumps(list(vct_values)),
            "created_ns": self.clock(),
            "revoked_ns": None,
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                t.trusted_issuers.update().where(t.trusted_issuers.c.issuer_id == issuer_id).values(**values)
            )
            if updated.rowcount == 0:
                conn.execute(t.trusted_issuers.insert().values(issuer_id=issuer_id, **values))
        return TrustedIssuer(issuer_id, key, tuple(vct_values), bbs_did, tuple(previous))

    def revoke(self, issuer_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.trusted_issuers.update()
                .where(t.trusted_issuers.c.issuer_id == issuer_id)
                .values(revoked_ns=self.clock())
            )

    def get(self, issuer_id: str) -> TrustedIssuer | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(t.trusted_issuers).where(
                        t.trusted_issuers.c.issuer_id == issuer_id, t.trusted_issuers.c.revoked_ns.is_(None)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        keys = json.loads(row["public_key_json"])
        return TrustedIssuer(
            row["issuer_id"],
            keys.get("jwk"),
            tuple(json.loads(row["vct_values_json"])),
            keys.get("bbs_did"),
            tuple(keys.get("previous") or ()),
        )


class EligibilityRules:
    """Named rules registered by agencies (``name = expression`` plus the credential types asked for)."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = system_clock_ns) -> None:
        self.engine = engine
        self.clock = clock

    def register(self, owner: str, definition: str, vct_values: Sequence[str]) -> eligibility.Rule:
        rule = eligibility.parse_rule(definition)
        if not vct_values:
            raise VerifierError("invalid_request", "vct_values must not be empty")
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(t.eligibility_rules.c.owner).where(t.eligibility_rules.c.name == rule.name)
            ).scalar()
            values = {
                "owner": owner,
                "expression": rule.expression,
                "vct_values_json": json.dumps(list(vct_values)),
                "created_ns": self.clock(),
            }
            if existing is None:
                conn.execute(t.eligibility_rules.insert().values(name=rule.name, **values))
            elif existing != owner:
                raise VerifierError("conflict", "a rule with this name belongs to another client", status=409)
            else:
                conn.execute(
                    t.eligibility_rules.update()
                    .where(t.eligibility_rules.c.name == rule.name)
                    .values(**values)
                )
        return rule

    def get(self, name: str) -> tuple[eligibility.Rule, tuple[str, ...]] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t.eligibility_rules).where(t.eligibility_rules.c.name == name))
                .mappings()
                .first()
            )
        if row is None:
            return None
        rule = eligibility.parse_rule(f"{row['name']} = {row['expression']}")
        return rule, tuple(json.loads(row["vct_values_json"]))

    def list(self, owner: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(t.eligibility_rules).order_by(t.eligibility_rules.c.name)
        if owner is not None:
            query = query.where(t.eligibility_rules.c.owner == owner)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {"name": r["name"], "expression": r["expression"], "vct_values": json.loads(r["vct_values_json"])}
            for r in rows
        ]


# --------------------------------------------------------------------------------------------
# requests and decisions


@dataclass(frozen=True, slots=True)
class VerifierConfig:
    response_uri: str  # where wallets POST (direct_post)
    request_uri_base: str  # request objects are served at f"{request_uri_base}/{request_id}"
    signing_jwk: Mapping[str, Any] = field(repr=False)  # private Ed25519 JWK: signs request objects
    request_ttl_s: int = 300
    kb_max_age_s: int = 300
    # With a certificate (request_object.RequestSigner.x509) request objects are signed as an
    # x509_san_dns / x509_hash client instead of the did:key of `signing_jwk`.
    x509_signer: request_object.RequestSigner | None = None

    @property
    def signer(self) -> request_object.RequestSigner:
        return self.x509_signer or request_object.RequestSigner.did_key(self.signing_jwk)

    @property
    def effective_client_id(self) -> str:
        """The audience wallets bind presentations to: ``decentralized_identifier:did:key:z6Mk…``,
        or ``x509_san_dns:<name>`` / ``x509_hash:<hash>`` with a certificate."""
        return self.signer.client_id


@dataclass(frozen=True, slots=True)
class PresentationRequest:
    id: int
    owner: str
    nonce: str
    state: str
    dcql_query: dict[str, Any]
    rule_name: str | None
    pseudonym_context: str | None
    created_ns: int
    expires_ns: int
    status: str

    @property
    def id_hex(self) -> str:
        return uuid.UUID(int=self.id).hex


@dataclass(frozen=True, slots=True)
class Decision:
    """What the agency learns: the outcome and only the requested, disclosed claims."""

    request_id: int
    accepted: bool
    reason: str
    eligible: bool | None
    credential_query_id: str | None
    issuer_id: str | None
    vct: str | None
    format: str | None
    disclosed: dict[str, Any]
    pseudonym: str | None
    status_checked: bool
    created_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": uuid.UUID(int=self.request_id).hex,
            "accepted": self.accepted,
            "reason": self.reason,
            "eligible": self.eligible,
            "credential_query_id": self.credential_query_id,
            "issuer": self.issuer_id,
            "vct": self.vct,
            "format": self.format,
            "disclosed": self.disclosed,
            "pseudonym": self.pseudonym,
            "status_checked": self.status_checked,
        }


@dataclass(frozen=True, slots=True)
class VerifiedPresentation:
    format: str
    issuer_id: str
    vct: str
    claims: dict[str, Any]
    pseudonym: str | None = None
    status_checked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _row_to_request(row: sa.RowMapping) -> PresentationRequest:
    return PresentationRequest(
        id=row["id"],
        owner=row["owner"],
        nonce=row["nonce"],
        state=row["state"],
        dcql_query=json.loads(row["dcql_json"]),
        rule_name=row["rule_name"],
        pseudonym_context=row["pseudonym_context"],
        created_ns=row["created_ns"],
        expires_ns=row["expires_ns"],
        status=row["status"],
    )


def _string_list(value: Any, what: str) -> list[str] | None:
    """A wallet metadata value: ``None`` when absent, else it must be a non-empty list of strings."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise VerifierError("invalid_request", f"wallet_metadata {what} must be a non-empty array of strings")
    return value


def _sdjwt_reason(exc: sdjwt.SDJWTError) -> str:
    text = str(exc)
    for needle, reason in (
        ("audience", "wrong_audience"),
        ("nonce", "nonce_mismatch"),
        ("expired", "expired_credential"),
        ("too old", "stale_key_binding"),
        ("issuer signature", "bad_issuer_signature"),
    ):
        if needle in text:
            return reason
    return "invalid_presentation"


def require_bbs_status(query: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a (valid) DCQL query whose BBS credential queries also ask for ``status``.

    The claim is added to ``claims`` and to every claim set, so no way of satisfying the query
    leaves the status reference undisclosed.
    """
    out: dict[str, Any] = copy.deepcopy(dict(query))
    for cq in out["credentials"]:
        if cq.get("format") != dcql.BBS_FORMAT:
            continue
        # own copies: a query built in code may share one claims list between credential queries
        claims: list[dict[str, Any]] = [dict(c) for c in cq.get("claims", [])]
        cq["claims"] = claims
        entry = next((c for c in claims if c.get("path") == [STATUS_CLAIM]), None)
        if entry is None:
            entry = {"path": [STATUS_CLAIM]}
            claims.append(entry)
        if "claim_sets" not in cq:
            continue
        if "id" not in entry:  # with claim_sets every claim has an id: pick a free one
            taken = {c.get("id") for c in claims}
            entry["id"] = next(f"status_{n}" for n in range(len(claims) + 1) if f"status_{n}" not in taken)
        cq["claim_sets"] = [s if entry["id"] in s else [*s, entry["id"]] for s in cq["claim_sets"]]
    return out


class Verifier:
    def __init__(
        self,
        engine: sa.Engine,
        config: VerifierConfig,
        issuers: TrustedIssuers,
        *,
        rules: EligibilityRules | None = None,
        status_checker: status_list.StatusChecker | None = None,
        clock: Clock = system_clock_ns,
        today: Callable[[], dt.date] | None = None,
        format_checks: Mapping[str, PresentationCheck] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        # Fails now, not at the first request, when the key cannot identify a signing client.
        self.signer = config.signer
        self.client_id = self.signer.client_id
        self.issuers = issuers
        self.rules = rules
        self.status_checker = status_checker
        self.clock = clock
        self._today = today
        self._format_checks = dict(format_checks or {})

    def today(self) -> dt.date:
        if self._today is not None:
            return self._today()
        return dt.datetime.fromtimestamp(self.clock() // NS, dt.UTC).date()

    # ---------------------------------------------------------------------------------------

    def create_request(
        self,
        owner: str,
        *,
        dcql_query: Mapping[str, Any] | None = None,
        rule_name: str | None = None,
        pseudonym_context: str | None = None,
        require_status: bool = True,
    ) -> PresentationRequest:
        """Store a new request; give exactly one of a DCQL query or a registered rule name.

        ``require_status``: BBS credentials must disclose their status-list reference (added to
        every BBS credential query) so revocation and suspension are checked. The reference is
        the same in every presentation of a credential: without it BBS presentations stay
        unlinkable, but a revoked credential is accepted until it expires.
        """
        if (dcql_query is None) == (rule_name is None):
            raise VerifierError("invalid_request", "give either dcql_query or rule_name")
        self._check_signer(self.clock() // NS)
        if rule_name is not None:
            if self.rules is None:
                raise VerifierError("invalid_request", "no eligibility rules configured")
            found = self.rules.get(rule_name)
            if found is None:
                raise VerifierError("not_found", "unknown eligibility rule", status=404)
            rule, vct_values = found
            query = rule.dcql(vct_values=vct_values)
        else:
            query = dict(dcql_query or {})
        try:
            dcql.parse_query(query)
            if require_status:
                query = require_bbs_status(query)
                dcql.parse_query(query)
        except dcql.DCQLError as exc:
            raise VerifierError("invalid_request", f"dcql_query: {exc}") from exc
        now = self.clock()
        request = PresentationRequest(
            id=uuid.uuid4().int,
            owner=owner,
            nonce=secrets.token_urlsafe(24),  # 192 bits
            state=secrets.token_urlsafe(24),
            dcql_query=query,
            rule_name=rule_name,
            pseudonym_context=pseudonym_context,
            created_ns=now,
            expires_ns=now + self.config.request_ttl_s * NS,
            status="pending",
        )
        with self.engine.begin() as conn:
            conn.execute(
                t.presentation_requests.insert().values(
                    id=request.id,
                    owner=owner,
                    nonce=request.nonce,
                    state=request.state,
                    dcql_json=json.dumps(query, separators=(",", ":")),
                    rule_name=rule_name,
                    pseudonym_context=pseudonym_context,
                    created_ns=now,
                    expires_ns=request.expires_ns,
                    status="pending",
                    completed_ns=None,
                )
            )
        return request

    def get_request(self, request_id: int) -> PresentationRequest | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(t.presentation_requests).where(t.presentation_requests.c.id == request_id)
                )
                .mappings()
                .first()
            )
        return None if row is None else _row_to_request(row)

    def request_object(self, request: PresentationRequest) -> dict[str, Any]:
        """The Authorization Request parameters (what :meth:`signed_request_object` signs)."""
        obj: dict[str, Any] = {
            "client_id": self.client_id,
            "response_type": "vp_token",
            "response_mode": "direct_post",
            "response_uri": self.config.response_uri,
            "nonce": request.nonce,
            "state": request.state,
            "dcql_query": request.dcql_query,
            "client_metadata": self.client_metadata(),
        }
        if request.pseudonym_context is not None:
            obj["pseudonym_context"] = request.pseudonym_context
        return obj

    @staticmethod
    def client_metadata() -> dict[str, Any]:
        """Verifier metadata (OpenID4VP 1.0 section 11): the formats and algorithms it accepts."""
        return {
            "vp_formats_supported": {
                dcql.SD_JWT_FORMAT: {
                    "sd-jwt_alg_values": list(SD_JWT_ALG_VALUES),
                    "kb-jwt_alg_values": list(SD_JWT_ALG_VALUES),
                },
                dcql.BBS_FORMAT: {},
            }
        }

    def signed_request_object(
        self,
        request: PresentationRequest,
        *,
        wallet_metadata: str | None = None,
        wallet_nonce: str | None = None,
    ) -> str:
        """The Request Object served at ``request_uri`` (``application/oauth-authz-req+jwt``).

        ``wallet_metadata`` (a JSON text) and ``wallet_nonce`` come from a wallet that POSTed to
        ``request_uri``: the metadata must allow this request (:meth:`check_wallet_metadata`) and
        the nonce is signed in as ``wallet_nonce``. Raises :class:`VerifierError` otherwise.
        """
        if wallet_metadata is not None:
            self.check_wallet_metadata(request, wallet_metadata)
        params = self.request_object(request)
        if wallet_nonce is not None:
            try:
                params["wallet_nonce"] = request_object.check_wallet_nonce(wallet_nonce)
            except request_object.RequestObjectError as exc:
                raise VerifierError("invalid_request", str(exc)) from exc
        now_s = self.clock() // NS
        self._check_signer(now_s)
        return request_object.sign_request(
            params,
            self.signer,
            iat=now_s,
            exp=max(request.expires_ns // NS, now_s + 1),
        )

    def _check_signer(self, now_s: int) -> None:
        """No request while the verifier certificate is out of date: wallets would refuse it."""
        try:
            self.signer.check_valid(now_s)
        except request_object.RequestObjectError as exc:
            raise VerifierError("temporarily_unavailable", str(exc), status=503) from exc

    def check_wallet_metadata(self, request: PresentationRequest, text: str) -> dict[str, Any]:
        """Parse ``wallet_metadata`` and refuse it when the wallet cannot take part in ``request``.

        Malformed (over :data:`MAX_WALLET_METADATA_CHARS`, not JSON, not an object, a known
        parameter of the wrong type): ``invalid_request``. A listed
        ``client_id_prefixes_supported`` without this verifier's prefix (``decentralized_identifier``,
        or ``x509_san_dns``/``x509_hash`` with a certificate), or
        ``request_object_signing_alg_values_supported`` without its signing alg, or
        ``response_modes_supported`` without ``direct_post``: ``invalid_request``;
        ``response_types_supported`` without ``vp_token``: ``unsupported_response_type``;
        ``vp_formats_supported`` with which the DCQL query cannot be met (formats, or
        ``*_alg_values`` sharing no algorithm with :meth:`client_metadata`):
        ``vp_formats_not_supported``. Parameters the wallet leaves out are not held against it
        (the wallet asked by POST, so it can handle this request); unknown ones are ignored.
        """
        if len(text) > MAX_WALLET_METADATA_CHARS:
            raise VerifierError(
                "invalid_request", f"wallet_metadata is over {MAX_WALLET_METADATA_CHARS} characters"
            )
        try:
            metadata = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise VerifierError("invalid_request", "wallet_metadata is not JSON") from exc
        if not isinstance(metadata, dict):
            raise VerifierError("invalid_request", "wallet_metadata must be a JSON object")
        for name, needed, code in (
            ("client_id_prefixes_supported", self.signer.prefix, "invalid_request"),
            ("request_object_signing_alg_values_supported", self.signer.alg, "invalid_request"),
            ("response_types_supported", "vp_token", "unsupported_response_type"),
            ("response_modes_supported", "direct_post", "invalid_request"),
        ):
            listed = _string_list(metadata.get(name), name)
            if listed is not None and needed not in listed:
                raise VerifierError(code, f"the wallet's {name} lacks {needed}, which this verifier uses")
        formats = metadata.get("vp_formats_supported")
        if formats is not None:
            self._check_wallet_formats(request, formats)
        return metadata

    def _check_wallet_formats(self, request: PresentationRequest, formats: Any) -> None:
        if not isinstance(formats, dict) or not all(isinstance(v, dict) for v in formats.values()):
            raise VerifierError("invalid_request", "vp_formats_supported must map formats to objects")
        ours: dict[str, dict[str, list[str]]] = self.client_metadata()["vp_formats_supported"]
        usable: set[str] = set()
        for fmt, theirs in formats.items():
            # each algorithm list both sides state must share a value; an unstated list is no limit
            disjoint = False
            for name, accepted in ours.get(fmt, {}).items():
                listed = _string_list(theirs.get(name), f"vp_formats_supported {name}")
                disjoint = disjoint or (listed is not None and not set(listed) & set(accepted))
            if not disjoint:
                usable.add(fmt)
        query = dcql.parse_query(request.dcql_query)
        met = {cq.id for cq in query.credentials if cq.format in usable}
        if query.credential_sets is None:
            satisfiable = len(met) == len(query.credentials)
        else:
            satisfiable = all(
                any(set(option) <= met for option in cs.options)
                for cs in query.credential_sets
                if cs.required
            )
        if not satisfiable:
            wanted = sorted({cq.format for cq in query.credentials})
            raise VerifierError(
                "vp_formats_not_supported",
                f"the wallet's vp_formats_supported cannot meet this request (formats {', '.join(wanted)})",
            )

    def request_uri(self, request: PresentationRequest) -> str:
        return f"{self.config.request_uri_base}/{request.id_hex}"

    # ---------------------------------------------------------------------------------------

    def _check_sd_jwt(
        self, request: PresentationRequest, cq: dcql.CredentialQuery, text: str
    ) -> VerifiedPresentation:
        try:
            header, payload = sdjwt.peek_issuer_jwt(text)  # which issuer key; verify() checks it all
        except sdjwt.SDJWTError as exc:
            raise _Reject("malformed_presentation") from exc
        iss = payload.get("iss")
        trusted = self.issuers.get(iss) if isinstance(iss, str) else None
        if trusted is None or trusted.public_key is None:
            raise _Reject("untrusted_issuer")
        issuer_jwk = trusted.jwk_for(header.get("kid"))
        if issuer_jwk is None:
            raise _Reject("untrusted_issuer")
        try:
            verified = sdjwt.verify(
                text,
                issuer_jwk=issuer_jwk,
                expected_audience=self.client_id,
                expected_nonce=request.nonce,
                require_key_binding=cq.require_cryptographic_holder_binding,
                now=self.clock() // NS,
                kb_max_age_s=self.config.kb_max_age_s,
            )
        except sdjwt.SDJWTError as exc:
            raise _Reject(_sdjwt_reason(exc)) from exc
        vct = verified.claims["vct"]
        if vct not in trusted.vct_values:
            raise _Reject("vct_not_allowed_for_issuer")
        checked = False
        if "status" in verified.claims:
            checked = self._check_status(verified.claims["status"])
        return VerifiedPresentation(cq.format, trusted.issuer_id, vct, verified.claims, None, checked)

    def _check_bbs(
        self, request: PresentationRequest, cq: dcql.CredentialQuery, text: str
    ) -> VerifiedPresentation:
        from identity import bbs_credentials as bc  # BLS12-381 is only loaded when BBS is used

        try:
            header = bc.parse_presentation(text)["_header"]
        except (bc.BBSCredentialError, ValueError) as exc:
            raise _Reject("malformed_presentation") from exc
        iss = header.get("iss")
        trusted = self.issuers.get(iss) if isinstance(iss, str) else None
        if trusted is None or trusted.bbs_did is None:
            raise _Reject("untrusted_issuer")
        try:
            verified = bc.verify_presentation(
                text,
                issuer_public_key=did_key.decode(trusted.bbs_did).public_key,
                expected_audience=self.client_id,
                expected_nonce=request.nonce,
                expected_context=request.pseudonym_context,
                now=self.clock() // NS,
            )
        except bc.BBSCredentialError as exc:
            text_ = str(exc)
            reason = (
                "expired_credential"
                if "expired" in text_
                else "wrong_pseudonym_context"
                if "another verifier" in text_
                else "invalid_presentation"
            )
            raise _Reject(reason) from exc
        if verified.vct not in trusted.vct_values:
            raise _Reject("vct_not_allowed_for_issuer")
        # The status reference is disclosed only when the request asked for it (it links
        # presentations); without it the credential's short validity is all that bounds it.
        checked = False
        if STATUS_CLAIM in verified.claims:
            checked = self._check_status(verified.claims[STATUS_CLAIM])
        return VerifiedPresentation(
            cq.format, trusted.issuer_id, verified.vct, verified.claims, verified.pseudonym, checked
        )

    def _check_status(self, claim: Any) -> bool:
        if self.status_checker is None:
            raise _Reject("status_unavailable")
        try:
            status = self.status_checker.status(claim)
        except status_list.StatusListError as exc:
            raise _Reject("status_unavailable") from exc
        if status == status_list.INVALID:
            raise _Reject("revoked")
        if status == status_list.SUSPENDED:
            raise _Reject("suspended")
        if status != status_list.VALID:
            raise _Reject("status_not_valid")
        return True

    def _check(self, request: PresentationRequest, vp_token: Any) -> tuple[Decision, dict[str, Any]]:
        if isinstance(vp_token, str):
            if len(vp_token) > MAX_VP_TOKEN_CHARS:
                raise _Reject("malformed_vp_token")
            try:
                vp_token = json.loads(vp_token)
            except ValueError as exc:
                raise _Reject("malformed_vp_token") from exc
        if not isinstance(vp_token, dict) or not vp_token:
            raise _Reject("malformed_vp_token")
        query = dcql.parse_query(request.dcql_query)
        ids = {cq.id for cq in query.credentials}
        held: list[dcql.HeldCredential] = []
        for qid, presentations in vp_token.items():
            if qid not in ids:
                raise _Reject("unknown_credential_query_id")
            cq = query.by_id(qid)
            if not isinstance(presentations, list) or not presentations:
                raise _Reject("malformed_vp_token")
            if len(presentations) > 1 and not cq.multiple:
                raise _Reject("multiple_presentations_not_requested")
            for text in presentations:
                if not isinstance(text, str):
                    raise _Reject("malformed_vp_token")
                if cq.format in dcql.SD_JWT_FORMATS:
                    vp = self._check_sd_jwt(request, cq, text)
                elif cq.format == dcql.BBS_FORMAT and cq.format not in self._format_checks:
                    vp = self._check_bbs(request, cq, text)
                elif cq.format in self._format_checks:
                    vp = self._format_checks[cq.format](request, cq, text)
                else:
                    raise _Reject("unsupported_format")
                if cq.vct_values is not None and vp.vct not in cq.vct_values:
                    raise _Reject("vct_not_requested")
                match = dcql.match_credential(cq, dcql.HeldCredential(vp.format, vp.vct, vp.claims))
                if match is None:
                    raise _Reject("query_not_satisfied")
                held.append(dcql.HeldCredential(vp.format, vp.vct, vp.claims, ref=(qid, vp)))
        selection = dcql.evaluate(query, held)
        if not selection.satisfied:
            raise _Reject("query_not_satisfied")
        disclosed: dict[str, Any] = {}
        first: tuple[str, VerifiedPresentation] | None = None
        status_checked = True
        pseudonym = None
        for qid, matches in selection.matches.items():
            # the status reference was checked above; like any correlation handle it is not kept
            values = [{k: v for k, v in m.disclosed_values().items() if k != STATUS_CLAIM} for m in matches]
            disclosed[qid] = values[0] if len(values) == 1 else values
            for m in matches:
                _, vp = m.credential.ref
                status_checked = status_checked and vp.status_checked
                pseudonym = pseudonym or vp.pseudonym
                if first is None:
                    first = (qid, vp)
        eligible = None
        reason = "verified"
        if request.rule_name is not None and self.rules is not None:
            found = self.rules.get(request.rule_name)
            if found is None:
                raise _Reject("rule_removed")
            merged: dict[str, Any] = {}
            for value in disclosed.values():
                if isinstance(value, dict):
                    merged.update(value)
            decision = found[0].decide(merged, today=self.today())
            eligible = decision.eligible
            reason = "eligible" if decision.eligible else "not_eligible"
        qid, vp0 = first if first is not None else (None, None)
        result = Decision(
            request_id=request.id,
            accepted=True,
            reason=reason,
            eligible=eligible,
            credential_query_id=qid,
            issuer_id=None if vp0 is None else vp0.issuer_id,
            vct=None if vp0 is None else vp0.vct,
            format=None if vp0 is None else vp0.format,
            disclosed=disclosed,
            pseudonym=pseudonym,
            status_checked=status_checked,
            created_ns=self.clock(),
        )
        return result, disclosed

    def handle_response(self, *, state: str, vp_token: Any) -> Decision:
        """``direct_post`` endpoint: verify once, store the decision, refuse replays."""
        if not isinstance(state, str) or not state or len(state) > 64:
            raise VerifierError("invalid_request", "missing or malformed state")
        now = self.clock()
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(t.presentation_requests).where(t.presentation_requests.c.state == state)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise VerifierError("invalid_request", "unknown state", status=400)
        request = _row_to_request(row)
        if request.status != "pending":
            raise VerifierError("invalid_request", "this request was already answered (replay)", status=400)
        if request.expires_ns <= now:
            decision = self._reject(request, "expired_request")
        else:
            try:
                decision, _ = self._check(request, vp_token)
            except _Reject as rejected:
                decision = self._reject(request, rejected.reason)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                t.presentation_requests.update()
                .where(
                    t.presentation_requests.c.id == request.id, t.presentation_requests.c.status == "pending"
                )
                .values(status="completed" if decision.accepted else "failed", completed_ns=now)
            )
            if claimed.rowcount != 1:
                raise VerifierError(
                    "invalid_request", "this request was already answered (replay)", status=400
                )
            conn.execute(
                t.presentation_results.insert().values(
                    request_id=request.id,
                    accepted=decision.accepted,
                    reason=decision.reason,
                    eligible=decision.eligible,
                    credential_query_id=decision.credential_query_id,
                    issuer_id=decision.issuer_id,
                    vct=decision.vct,
                    format=decision.format,
                    disclosed_json=json.dumps(decision.disclosed, separators=(",", ":")),
                    pseudonym=decision.pseudonym,
                    status_checked=decision.status_checked,
                    created_ns=decision.created_ns,
                )
            )
        return decision

    def _reject(self, request: PresentationRequest, reason: str) -> Decision:
        return Decision(
            request.id, False, reason, None, None, None, None, None, {}, None, False, self.clock()
        )

    def result(self, request_id: int, *, owner: str | None = None) -> Decision | None:
        """The stored decision (``None`` while pending); ``owner`` restricts to the requesting agency."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(t.presentation_results, t.presentation_requests.c.owner)
                    .join(
                        t.presentation_requests,
                        t.presentation_requests.c.id == t.presentation_results.c.request_id,
                    )
                    .where(t.presentation_results.c.request_id == request_id)
                )
                .mappings()
                .first()
            )
        if row is None or (owner is not None and row["owner"] != owner):
            return None
        return Decision(
            request_id=row["request_id"],
            accepted=bool(row["accepted"]),
            reason=row["reason"],
            eligible=None if row["eligible"] is None else bool(row["eligible"]),
            credential_query_id=row["credential_query_id"],
            issuer_id=row["issuer_id"],
            vct=row["vct"],
            format=row["format"],
            disclosed=json.loads(row["disclosed_json"]),
            pseudonym=row["pseudonym"],
            status_checked=bool(row["status_checked"]),
            created_ns=row["created_ns"],
        )
