"""OpenID4VCI 1.0 issuer endpoints (pre-authorized code flow) and credential status management.

Protocol endpoints (metadata, token grant, nonce, credential) answer with OpenID4VCI / RFC 6749
error objects ``{"error": ..., "error_description": ...}``; staff endpoints (offers, status) use
problem+json like the rest of the API.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from typing import Annotated, Any, ClassVar

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin
from fastapi import APIRouter, Body, FastAPI, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from civitas.auth import Principal, require_scope
from civitas.errors import ProblemError, protocol_error_response
from civitas.keys import KeyStore
from civitas.ratelimit import RATE_LIMITED_RESPONSE, RateLimiter, rate_limited
from civitas.settings import Settings
from identity import jose, status_list
from identity.issuer import (
    BBS_FORMAT,
    BBS_PROOF_TYPE,
    MAX_STATUS_LIST_ID,
    PRE_AUTH_GRANT,
    CredentialConfiguration,
    IssuanceError,
    Issuer,
    IssuerConfig,
)

router = APIRouter(tags=["identity: issuance"])

ISSUE_SCOPE = "identity:issue"
CREDENTIAL_SCOPE = "identity:credential"
WALLET_CLIENT_ID = "wallet"
OFFER_SUBJECT_PREFIX = "offer:"
NO_STORE = {"Cache-Control": "no-store"}
NONCE_LIMIT = "identity-nonce"

RESIDENT_CLAIMS = ("given_name", "family_name", "birthdate", "address", "student", "disability", "low_income")


def _b64u_int(value: int) -> str:
    return uuid.UUID(int=value).hex


def _parse_hex_id(text: str) -> int:
    try:
        return uuid.UUID(hex=text).int
    except ValueError as exc:
        raise ProblemError(404, "not-found", "Not found", "no such id") from exc


def build_issuer(app: FastAPI) -> Issuer:
    settings: Settings = app.state.settings
    keys: KeyStore = app.state.keys
    key = keys.current("service")
    base = settings.issuer
    signing_jwk = {**key.jwk(), "d": _seed_b64u(key)}
    config = IssuerConfig(
        issuer_id=base,
        credential_endpoint=f"{base}/identity/credential",
        nonce_endpoint=f"{base}/identity/nonce",
        token_endpoint=f"{base}/oauth/token",
        status_list_base=f"{base}/identity/status-lists",
        signing_jwk=signing_jwk,
        kid=key.kid,
        display_name="Civitas city issuer",
        configurations={
            "resident": CredentialConfiguration(
                id="resident",
                vct=f"{base}/credentials/resident",
                display_name="City resident",
                claims=RESIDENT_CLAIMS,
            ),
            "resident_bbs": CredentialConfiguration(
                id="resident_bbs",
                vct=f"{base}/credentials/resident",
                display_name="City resident (BBS, pseudonymous)",
                claims=RESIDENT_CLAIMS,
                validity_s=30 * 86_400,
                format=BBS_FORMAT,
            ),
        },
        bbs_key=_bbs_key(key),
    )
    return Issuer(app.state.engine, config, clock=app.state.clock, today=lambda: _today(app))


def _bbs_key(key: Any) -> Any:
    """The BBS issuer key, derived from the service seed (it rotates with the service key)."""
    import hashlib

    from identity.bbs_credentials import BBSIssuerKey

    return BBSIssuerKey.from_seed(hashlib.sha256(b"civitas bbs issuer key v1\x00" + key.seed).digest())


def _seed_b64u(key: Any) -> str:
    import base64

    return base64.urlsafe_b64encode(key.seed).rstrip(b"=").decode()


def _today(app: FastAPI) -> dt.date:
    return dt.datetime.fromtimestamp(app.state.clock() // 1_000_000_000, dt.UTC).date()


# --------------------------------------------------------------------------------------------
# the pre-authorized code grant, plugged into the token endpoint


class _WalletClient(ClientMixin):  # type: ignore[misc]
    """Wallets are public clients (OID4VCI allows anonymous access with a pre-authorized code)."""

    def get_client_id(self) -> str:
        return WALLET_CLIENT_ID

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == PRE_AUTH_GRANT

    def get_allowed_scope(self, scope: str | None) -> str:
        return CREDENTIAL_SCOPE


class _OfferUser:
    def __init__(self, offer_id: int) -> None:
        self.offer_id = offer_id

    def get_user_id(self) -> str:
        return OFFER_SUBJECT_PREFIX + _b64u_int(self.offer_id)


class PreAuthorizedCodeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """``urn:ietf:params:oauth:grant-type:pre-authorized_code`` (OID4VCI 1.0 section 6.1)."""

    GRANT_TYPE = PRE_AUTH_GRANT
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none"]

    def validate_token_request(self) -> None:
        form = self.request.form
        code = form.get("pre-authorized_code")
        if not code:
            raise InvalidRequestError("missing pre-authorized_code")
        issuer: Issuer = self.server.identity_issuer
        try:
            grant = issuer.redeem_pre_authorized_code(code, form.get("tx_code"))
        except IssuanceError as exc:
            if exc.error == "invalid_request":
                raise InvalidRequestError(exc.description) from exc
            raise InvalidGrantError(exc.description) from exc
        self.request.client = _WalletClient()
        self.request.user = _OfferUser(grant.offer_id)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(
            user=self.request.user, scope=CREDENTIAL_SCOPE, include_refresh_token=False
        )
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def setup(app: FastAPI) -> None:
    issuer = build_issuer(app)
    app.state.identity_issuer = issuer
    settings: Settings = app.state.settings
    limiters = _rate_limiters(app)
    limiters[NONCE_LIMIT] = RateLimiter(
        NONCE_LIMIT,
        rate_per_min=settings.identity_rate_limit_per_min,
        burst=settings.identity_rate_limit_burst,
    )
    server = app.state.oauth_server
    server.identity_issuer = issuer
    server.register_grant(PreAuthorizedCodeGrant)


def _rate_limiters(app: FastAPI) -> dict[str, RateLimiter]:
    if not hasattr(app.state, "rate_limiters"):
        app.state.rate_limiters = {}
    limiters: dict[str, RateLimiter] = app.state.rate_limiters
    return limiters


def _issuer(request: Request) -> Issuer:
    issuer: Issuer = request.app.state.identity_issuer
    return issuer


def _protocol_error(exc: IssuanceError) -> JSONResponse:
    headers = {"WWW-Authenticate": f'Bearer error="{exc.error}"'} if exc.status == 401 else None
    return protocol_error_response(exc.status, exc.error, exc.description, headers)


def _staff_problem(exc: IssuanceError) -> ProblemError:
    status = exc.status if exc.status in (404, 409) else 400
    return ProblemError(status, exc.error.replace("_", "-"), "Issuance request refused", exc.description)


# --------------------------------------------------------------------------------------------
# metadata


@router.get("/.well-known/openid-credential-issuer", summary="Credential Issuer Metadata (OID4VCI 1.0)")
def issuer_metadata(request: Request) -> dict[str, Any]:
    meta = _issuer(request).metadata()
    meta["authorization_servers"] = [meta["credential_issuer"]]
    return meta


@router.get("/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)")
def authorization_server_metadata(request: Request) -> dict[str, Any]:
    issuer = _issuer(request)
    base = issuer.config.issuer_id
    return {
        "issuer": base,
        "token_endpoint": issuer.config.token_endpoint,
        "grant_types_supported": ["client_credentials", PRE_AUTH_GRANT],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


@router.get("/.well-known/jwt-vc-issuer", summary="SD-JWT VC issuer metadata (signing keys)")
def jwt_vc_issuer(request: Request) -> dict[str, Any]:
    issuer = _issuer(request)
    out: dict[str, Any] = {"issuer": issuer.config.issuer_id, "jwks": {"keys": [issuer.public_jwk]}}
    if issuer.config.bbs_key is not None:
        out["bbs_did"] = issuer.config.bbs_key.did  # BLS12-381 G2 key of civitas-bbs credentials
    return out


# --------------------------------------------------------------------------------------------
# staff: offers and credential status


class OfferRequest(BaseModel):
    credential_configuration_id: str = Field(default="resident", max_length=100)
    subject_ref: str = Field(
        min_length=1, max_length=200, description="the issuer's own reference for the citizen"
    )
    claims: dict[str, Any] = Field(description="raw claims to sign (predicates are derived by the issuer)")
    tx_code: bool = Field(default=True, description="protect the offer with a one-time numeric code")


class OfferCreated(BaseModel):
    offer_id: str
    credential_offer: dict[str, Any]
    credential_offer_uri: str
    tx_code: str | None = Field(description="give this to the citizen out of band; it is not stored")


@router.post("/identity/offers", status_code=201, summary="Create a credential offer for a citizen")
def create_offer(
    body: OfferRequest, request: Request, principal: Annotated[Principal, require_scope(ISSUE_SCOPE)]
) -> OfferCreated:
    if len(json.dumps(body.claims)) > 16_384:
        raise ProblemError(400, "invalid-request", "Claims too large", "claims are limited to 16 KiB")
    try:
        created = _issuer(request).create_offer(
            body.credential_configuration_id,
            body.claims,
            subject_ref=body.subject_ref,
            with_tx_code=body.tx_code,
        )
    except IssuanceError as exc:
        raise _staff_problem(exc) from exc
    uri = "openid-credential-offer://?credential_offer=" + urllib.parse.quote(
        json.dumps(created.offer, separators=(",", ":"))
    )
    return OfferCreated(
        offer_id=_b64u_int(created.offer_id),
        credential_offer=created.offer,
        credential_offer_uri=uri,
        tx_code=created.tx_code,
    )


class StatusChange(BaseModel):
    status: str = Field(pattern="^(valid|revoked|suspended)$")


_STATUS_VALUES = {
    "valid": status_list.VALID,
    "revoked": status_list.INVALID,
    "suspended": status_list.SUSPENDED,
}


@router.post(
    "/identity/credentials/{offer_id}/status",
    summary="Revoke, suspend or reinstate every copy issued for an offer",
)
def set_credential_status(
    offer_id: str,
    body: StatusChange,
    request: Request,
    principal: Annotated[Principal, require_scope(ISSUE_SCOPE)],
) -> dict[str, Any]:
    issuer = _issuer(request)
    batch = issuer.batch_of_offer(_parse_hex_id(offer_id))
    if batch is None:
        raise ProblemError(404, "not-found", "Not found", "no credential was issued for this offer")
    try:
        copies = issuer.set_status(batch, _STATUS_VALUES[body.status])
    except IssuanceError as exc:
        raise _staff_problem(exc) from exc
    return {"offer_id": offer_id, "status": body.status, "copies": copies}


@router.get(
    "/identity/status-lists/{list_id}",
    summary="Status List Token (draft-ietf-oauth-status-list)",
    response_class=Response,
    responses={200: {"content": {"application/statuslist+jwt": {}}}},
)
def get_status_list(list_id: Annotated[int, Path(ge=1, le=MAX_STATUS_LIST_ID)], request: Request) -> Response:
    try:
        token = _issuer(request).status_list_token(list_id)
    except IssuanceError as exc:
        raise ProblemError(404, "not-found", "Not found", "no such status list") from exc
    ttl = _issuer(request).config.status_list_ttl_s
    return Response(
        token, media_type="application/statuslist+jwt", headers={"Cache-Control": f"max-age={ttl}"}
    )


# --------------------------------------------------------------------------------------------
# wallet-facing protocol endpoints


_OID4VCI_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "OID4VCI error: invalid_credential_request, invalid_proof, invalid_nonce, ..."},
    401: {"description": "invalid_token (WWW-Authenticate: Bearer)"},
    403: {"description": "insufficient_scope"},
}


@router.post(
    "/identity/nonce",
    summary="OID4VCI nonce endpoint (stateless c_nonce; rate-limited per client)",
    dependencies=[rate_limited(NONCE_LIMIT)],
    responses=RATE_LIMITED_RESPONSE,
)
async def nonce(request: Request) -> JSONResponse:
    # Stateless (an HMAC over an expiry and random bytes): no database write, so no thread needed.
    return JSONResponse({"c_nonce": _issuer(request).new_nonce()}, headers=NO_STORE)


def _wallet_offer(request: Request) -> int:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise IssuanceError("invalid_token", "send the access token from the token endpoint", status=401)
    try:
        principal: Principal = request.app.state.token_verifier.verify(token.strip())
    except ProblemError as exc:
        raise IssuanceError("invalid_token", "the access token is invalid or expired", status=401) from exc
    if (
        principal.client_id != WALLET_CLIENT_ID
        or CREDENTIAL_SCOPE not in principal.scopes
        or not principal.subject.startswith(OFFER_SUBJECT_PREFIX)
    ):
        raise IssuanceError("insufficient_scope", "this token cannot request credentials", status=403)
    try:
        return uuid.UUID(hex=principal.subject[len(OFFER_SUBJECT_PREFIX) :]).int
    except ValueError as exc:
        raise IssuanceError("invalid_token", "malformed token subject", status=401) from exc


@router.post(
    "/identity/credential",
    summary="OID4VCI credential endpoint (batch via several proofs)",
    responses=_OID4VCI_ERRORS,
)
async def credential(request: Request, body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    try:
        offer_id = _wallet_offer(request)
        proofs_obj = body.get("proofs")
        issuer = _issuer(request)
        config_id = body.get("credential_configuration_id")
        if not isinstance(config_id, str) or config_id not in issuer.config.configurations:
            raise IssuanceError("unknown_credential_configuration", "no such credential configuration")
        bbs = issuer.config.configurations[config_id].format == BBS_FORMAT
        proof_type = BBS_PROOF_TYPE if bbs else "jwt"
        if not isinstance(proofs_obj, dict) or set(proofs_obj) != {proof_type}:
            raise IssuanceError("invalid_credential_request", f'send proofs as {{"{proof_type}": [...]}}')
        proofs = proofs_obj[proof_type]
        if not isinstance(proofs, list) or not all(isinstance(p, str) for p in proofs):
            raise IssuanceError(
                "invalid_credential_request", f"proofs.{proof_type} must be a list of strings"
            )
        credentials: list[Any]
        if bbs:
            try:
                commitments = [jose.b64u_decode(p) for p in proofs]
            except jose.JoseFailure as exc:
                raise IssuanceError("invalid_proof", "nym commitments are base64url") from exc
            credentials = await run_in_threadpool(
                issuer.issue_bbs, offer_id, commitments, configuration_id=config_id
            )
        else:
            credentials = await run_in_threadpool(issuer.issue, offer_id, proofs, configuration_id=config_id)
    except IssuanceError as exc:
        return _protocol_error(exc)
    return JSONResponse({"credentials": [{"credential": c} for c in credentials]}, headers=NO_STORE)
