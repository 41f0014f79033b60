"""OpenID4VP 1.0 verifier endpoints (DCQL, direct_post), eligibility rules and trusted issuers.

Agencies (OAuth2 clients with ``identity:verify``) create requests and read decisions; wallets
fetch signed request objects and post responses without authentication (the request's signature,
nonce and state and the holder's key binding protect the exchange). The service is the verifier:
its Client Identifier is ``decentralized_identifier:`` + the did:key of the service key. The wallet-facing endpoints answer with OpenID4VP /
RFC 6749 style errors; the agency endpoints with problem+json.

Every ``openid4vp://`` link offers ``request_uri_method=post`` (OpenID4VP 1.0 section 5.10): a
wallet that supports it POSTs its metadata and a ``wallet_nonce`` and gets a Request Object
carrying that nonce; a wallet that does not uses GET, which keeps being served.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from civitas.auth import PUBLIC_CLIENT_IDS, Principal, require_scope, sign_jwt
from civitas.errors import ProblemError, protocol_error_response
from civitas.ratelimit import RATE_LIMITED_RESPONSE, RateLimiter, rate_limited
from civitas.verifier_cert import load_signer
from identity import eligibility, request_object, status_list
from identity.issuer import BBS_FORMAT, Issuer
from identity.sessions import CitizenSessions, SessionError
from identity.verifier import (
    MAX_WALLET_METADATA_CHARS,
    EligibilityRules,
    PresentationRequest,
    TrustedIssuers,
    Verifier,
    VerifierConfig,
    VerifierError,
)

router = APIRouter(tags=["identity: presentation"])

VERIFY_SCOPE = "identity:verify"
ADMIN_SCOPE = "identity:admin"
NO_STORE = {"Cache-Control": "no-store"}
MAX_FORM_FIELDS = 8
# POST request_uri: wallet_metadata (8 KiB of JSON, percent-encoded up to 3 bytes a character)
# plus wallet_nonce fit; anything larger is refused before it is parsed.
MAX_REQUEST_URI_BODY_BYTES = 32 * 1024
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# What a signed-in citizen's token may carry (the consent and ledger APIs' citizen scopes).
CITIZEN_SCOPES = ("consent", "ledger:read", "ledger:write")
WALLET_CLIENT_ID = next(iter(PUBLIC_CLIENT_IDS))
SIGN_IN_LIMIT = "citizen-sessions"
# While the verifier certificate has expired nothing is signed (problem+json or OAuth error JSON).
CERTIFICATE_EXPIRED: dict[int | str, dict[str, Any]] = {
    503: {"description": "temporarily_unavailable: the verifier certificate chain has expired"}
}


def setup(app: FastAPI) -> None:
    """Verifier services; trusts the service's own issuer for its credential types."""
    engine, clock = app.state.engine, app.state.clock
    issuer: Issuer = app.state.identity_issuer
    base = issuer.config.issuer_id
    trusted = TrustedIssuers(engine, clock=clock)
    bbs_key = issuer.config.bbs_key
    trusted.register(
        base,
        issuer.public_jwk,
        sorted({c.vct for c in issuer.config.configurations.values()}),
        bbs_did=None if bbs_key is None else bbs_key.did,
        # credentials signed before a key rotation keep verifying (their kid names the old key)
        previous_keys=[k.jwk() for k in app.state.keys.retired("service")],
    )
    rules = EligibilityRules(engine, clock=clock)
    status_base = issuer.config.status_list_base + "/"

    def fetch(uri: str) -> str:
        if uri.startswith(status_base):
            return issuer.status_list_token(int(uri[len(status_base) :]))
        response = httpx.get(uri, timeout=5.0, headers={"Accept": "application/statuslist+jwt"})
        response.raise_for_status()
        return response.text

    def key_for(uri: str) -> dict[str, Any]:
        if uri.startswith(status_base):
            return issuer.public_jwk
        raise status_list.StatusListError("status list of an unknown issuer")

    checker = status_list.StatusChecker(
        fetch,
        key_for,
        clock=lambda: clock() // 1_000_000_000,
        authoritative=lambda uri: uri.startswith(status_base),
    )
    settings = app.state.settings
    config = VerifierConfig(
        response_uri=f"{base}/identity/presentation-responses",
        request_uri_base=f"{base}/identity/presentation-requests",
        signing_jwk=issuer.config.signing_jwk,  # the service key; its did:key is the client_id
        x509_signer=load_signer(settings, now=clock() // 1_000_000_000),  # unless a certificate is configured
    )
    app.state.identity_trusted = trusted
    app.state.identity_rules = rules
    verifier = Verifier(engine, config, trusted, rules=rules, status_checker=checker, clock=clock)
    app.state.identity_verifier = verifier
    if not hasattr(app.state, "rate_limiters"):
        app.state.rate_limiters = {}
    app.state.rate_limiters[SIGN_IN_LIMIT] = RateLimiter(
        SIGN_IN_LIMIT,
        rate_per_min=settings.identity_rate_limit_per_min,
        burst=settings.identity_rate_limit_burst,
    )
    app.state.identity_sessions = CitizenSessions(
        verifier,
        vct_values=sorted({c.vct for c in issuer.config.configurations.values() if c.format == BBS_FORMAT}),
        context_base=base,
        allowed_scopes=CITIZEN_SCOPES,
        default_scope=" ".join(CITIZEN_SCOPES),
    )


def _verifier(request: Request) -> Verifier:
    verifier: Verifier = request.app.state.identity_verifier
    return verifier


def _problem(exc: VerifierError) -> ProblemError:
    return ProblemError(exc.status, exc.code.replace("_", "-"), "Request refused", exc.description)


def _link(verifier: Verifier, request_uri: str) -> str:
    """The openid4vp:// link (QR code content): client_id and request_uri (RFC 9101), offering
    ``request_uri_method=post`` with the verifier's ``client_metadata`` so that a wallet can tell
    which of its capabilities matter (OpenID4VP 1.0 section 5.1). The signed Request Object
    carries the same metadata; a wallet uses only what is signed."""
    metadata = json.dumps(verifier.client_metadata(), separators=(",", ":"))
    params = {
        "client_id": verifier.client_id,
        "request_uri": request_uri,
        "request_uri_method": "post",
        "client_metadata": metadata,
    }
    return "openid4vp://?" + str(httpx.QueryParams(params))


def _hex_id(text: str) -> int:
    try:
        return uuid.UUID(hex=text).int
    except ValueError as exc:
        raise ProblemError(404, "not-found", "Not found", "no such presentation request") from exc


# --------------------------------------------------------------------------------------------
# agency side


class PresentationRequestCreate(BaseModel):
    dcql_query: dict[str, Any] | None = Field(
        default=None, description="a DCQL query (OpenID4VP 1.0 section 6)"
    )
    rule: str | None = Field(default=None, max_length=64, description="name of a registered eligibility rule")
    pseudonym_context: str | None = Field(default=None, max_length=200)
    require_status: bool = Field(
        default=True,
        description=(
            "BBS credentials must disclose their status-list reference so revocation is checked; "
            "false keeps BBS presentations unlinkable but accepts revoked credentials until they expire"
        ),
    )


class PresentationRequestCreated(BaseModel):
    id: str
    client_id: str = Field(description="the verifier: decentralized_identifier:did:key:…")
    request_uri: str
    authorization_request_uri: str = Field(
        description="openid4vp:// link or QR content for the wallet: client_id, request_uri, "
        "request_uri_method=post (GET stays served) and client_metadata"
    )
    expires_at: int
    dcql_query: dict[str, Any]


@router.post(
    "/identity/presentation-requests",
    status_code=201,
    summary="Ask a citizen for a presentation",
    responses=CERTIFICATE_EXPIRED,
)
def create_presentation_request(
    body: PresentationRequestCreate,
    request: Request,
    principal: Annotated[Principal, require_scope(VERIFY_SCOPE)],
) -> PresentationRequestCreated:
    verifier = _verifier(request)
    try:
        created = verifier.create_request(
            principal.client_id,
            dcql_query=body.dcql_query,
            rule_name=body.rule,
            pseudonym_context=body.pseudonym_context,
            require_status=body.require_status,
        )
    except VerifierError as exc:
        raise _problem(exc) from exc
    uri = verifier.request_uri(created)
    return PresentationRequestCreated(
        id=created.id_hex,
        client_id=verifier.client_id,
        request_uri=uri,
        authorization_request_uri=_link(verifier, uri),
        expires_at=created.expires_ns // 1_000_000_000,
        dcql_query=created.dcql_query,
    )


@router.get(
    "/identity/presentation-requests/{request_id}/result",
    summary="The verified decision (only the requested claims); 202 while pending",
)
def presentation_result(
    request_id: str, request: Request, principal: Annotated[Principal, require_scope(VERIFY_SCOPE)]
) -> JSONResponse:
    verifier = _verifier(request)
    rid = _hex_id(request_id)
    pending = verifier.get_request(rid)
    if pending is None or pending.owner != principal.client_id:
        raise ProblemError(404, "not-found", "Not found", "no such presentation request")
    decision = verifier.result(rid, owner=principal.client_id)
    if decision is None:
        return JSONResponse({"status": "pending"}, status_code=202, headers=NO_STORE)
    return JSONResponse({"status": "completed", **decision.to_json()}, headers=NO_STORE)


class RuleCreate(BaseModel):
    rule: str = Field(max_length=2000, examples=['senior_fare = resident_of == "civitas" and age_over_65'])
    vct_values: list[str] | None = Field(
        default=None, description="credential types; default: the city resident"
    )


@router.post("/identity/eligibility-rules", status_code=201, summary="Register a named eligibility rule")
def register_rule(
    body: RuleCreate, request: Request, principal: Annotated[Principal, require_scope(VERIFY_SCOPE)]
) -> dict[str, Any]:
    rules: EligibilityRules = request.app.state.identity_rules
    issuer: Issuer = request.app.state.identity_issuer
    vct_values = body.vct_values or [issuer.config.configurations["resident"].vct]
    try:
        rule = rules.register(principal.client_id, body.rule, vct_values)
    except eligibility.EligibilityError as exc:
        raise ProblemError(400, "invalid-rule", "Invalid eligibility rule", str(exc)) from exc
    except VerifierError as exc:
        raise _problem(exc) from exc
    return {
        "name": rule.name,
        "expression": rule.expression,
        "claims": list(rule.claim_names),
        "vct_values": vct_values,
        "dcql_query": rule.dcql(vct_values=vct_values),
    }


@router.get("/identity/eligibility-rules", summary="Eligibility rules registered by this client")
def list_rules(
    request: Request, principal: Annotated[Principal, require_scope(VERIFY_SCOPE)]
) -> list[dict[str, Any]]:
    rules: EligibilityRules = request.app.state.identity_rules
    return rules.list(principal.client_id)


class TrustedIssuerCreate(BaseModel):
    issuer: str = Field(min_length=1, max_length=200)
    jwk: dict[str, Any] | None = Field(default=None, description="public JWK (OKP Ed25519 or EC P-256)")
    bbs_did: str | None = Field(default=None, description="did:key of a BLS12-381 G2 key (BBS credentials)")
    vct_values: list[str] = Field(min_length=1)


@router.post("/identity/trusted-issuers", status_code=201, summary="Trust an issuer key for credential types")
def add_trusted_issuer(
    body: TrustedIssuerCreate, request: Request, principal: Annotated[Principal, require_scope(ADMIN_SCOPE)]
) -> dict[str, Any]:
    trusted: TrustedIssuers = request.app.state.identity_trusted
    try:
        entry = trusted.register(body.issuer, body.jwk, body.vct_values, bbs_did=body.bbs_did)
    except VerifierError as exc:
        raise _problem(exc) from exc
    return {"issuer": entry.issuer_id, "vct_values": list(entry.vct_values)}


# --------------------------------------------------------------------------------------------
# wallet side


def _vp_error(status: int, error: str, description: str) -> JSONResponse:
    return protocol_error_response(status, error, description)


def _pending(verifier: Verifier, request_id: str) -> PresentationRequest | JSONResponse:
    """The request a wallet may fetch, or the ``invalid_request_uri`` answer (GET and POST alike)."""
    try:
        rid = uuid.UUID(hex=request_id).int
    except ValueError:
        return _vp_error(404, "invalid_request_uri", "unknown request")
    found = verifier.get_request(rid)
    if found is None or found.status != "pending":
        return _vp_error(404, "invalid_request_uri", "unknown or already answered request")
    if found.expires_ns <= verifier.clock():
        return _vp_error(404, "invalid_request_uri", "this request expired")
    return found


@router.get(
    "/identity/presentation-requests/{request_id}",
    summary="Signed Request Object for the wallet (RFC 9101, application/oauth-authz-req+jwt)",
    response_class=Response,
    responses={
        200: {"content": {request_object.MEDIA_TYPE: {"schema": {"type": "string"}}}},
        404: {"description": "invalid_request_uri: unknown, expired or already answered"},
        **CERTIFICATE_EXPIRED,
    },
)
def get_request_object(request_id: str, request: Request) -> Response:
    verifier = _verifier(request)
    found = _pending(verifier, request_id)
    if isinstance(found, Response):
        return found
    try:
        jwt = verifier.signed_request_object(found)
    except VerifierError as exc:
        return _vp_error(exc.status, exc.code, exc.description)
    return Response(jwt, media_type=request_object.MEDIA_TYPE, headers=NO_STORE)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` once it is over ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _form(body: bytes) -> dict[str, list[str]]:
    """Strict application/x-www-form-urlencoded: ASCII, UTF-8 after percent-decoding, ``name=value``
    pairs only, at most :data:`MAX_FORM_FIELDS` of them. Raises ValueError."""
    fields: dict[str, list[str]] = {}
    pairs = urllib.parse.parse_qsl(
        body.decode("ascii"),
        keep_blank_values=True,
        strict_parsing=True,
        encoding="utf-8",
        errors="strict",
        max_num_fields=MAX_FORM_FIELDS,
    )
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


REQUEST_URI_POST_BODY: dict[str, Any] = {
    "required": False,
    "content": {
        FORM_MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "properties": {
                    "wallet_metadata": {
                        "type": "string",
                        "maxLength": MAX_WALLET_METADATA_CHARS,
                        "description": "JSON object: the wallet's metadata (OpenID4VP 1.0 section 10), "
                        "e.g. vp_formats_supported, client_id_prefixes_supported",
                    },
                    "wallet_nonce": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": request_object.WALLET_NONCE_MAX_CHARS,
                        "pattern": "^[\\x21-\\x7e]+$",
                        "description": "signed into the Request Object as wallet_nonce",
                    },
                },
            }
        }
    },
}


@router.post(
    "/identity/presentation-requests/{request_id}",
    summary="Signed Request Object for a wallet that POSTs its metadata and a wallet_nonce "
    "(OpenID4VP 1.0 request_uri_method=post)",
    response_class=Response,
    openapi_extra={"requestBody": REQUEST_URI_POST_BODY},
    responses={
        200: {"content": {request_object.MEDIA_TYPE: {"schema": {"type": "string"}}}},
        400: {
            "description": "invalid_request (malformed body, wallet_metadata or wallet_nonce; "
            "unsupported client_id prefix, signing alg or response mode), unsupported_response_type, "
            "vp_formats_not_supported"
        },
        404: {"description": "invalid_request_uri: unknown, expired or already answered"},
        413: {"description": f"invalid_request: body over {MAX_REQUEST_URI_BODY_BYTES} bytes"},
        **CERTIFICATE_EXPIRED,
    },
)
async def post_request_object(request_id: str, request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_MEDIA_TYPE:
        return _vp_error(400, "invalid_request", f"the body must be {FORM_MEDIA_TYPE}")
    body = await _read_body(request, MAX_REQUEST_URI_BODY_BYTES)
    if body is None:
        return _vp_error(413, "invalid_request", f"the body is over {MAX_REQUEST_URI_BODY_BYTES} bytes")
    try:
        fields = _form(body)
    except ValueError:
        return _vp_error(400, "invalid_request", "the body is not a well-formed form")
    wallet_metadata, wallet_nonce = fields.get("wallet_metadata", []), fields.get("wallet_nonce", [])
    if len(wallet_metadata) > 1 or len(wallet_nonce) > 1:
        return _vp_error(400, "invalid_request", "wallet_metadata and wallet_nonce may each appear once")
    verifier = _verifier(request)

    def sign() -> Response:
        found = _pending(verifier, request_id)
        if isinstance(found, Response):
            return found
        try:
            jwt = verifier.signed_request_object(
                found,
                wallet_metadata=wallet_metadata[0] if wallet_metadata else None,
                wallet_nonce=wallet_nonce[0] if wallet_nonce else None,
            )
        except VerifierError as exc:
            return _vp_error(exc.status, exc.code, exc.description)
        return Response(jwt, media_type=request_object.MEDIA_TYPE, headers=NO_STORE)

    return await run_in_threadpool(sign)


@router.post(
    "/identity/presentation-responses",
    summary="Wallet response (response_mode direct_post)",
    responses={
        400: {"description": "invalid_request (unknown state, replay) or invalid_presentation (reason)"}
    },
)
async def presentation_response(request: Request) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _vp_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    state, vp_token = form.get("state"), form.get("vp_token")
    if not isinstance(state, str) or not isinstance(vp_token, str):
        return _vp_error(400, "invalid_request", "state and vp_token are required")
    verifier = _verifier(request)
    try:
        decision = await run_in_threadpool(lambda: verifier.handle_response(state=state, vp_token=vp_token))
    except VerifierError as exc:
        return _vp_error(exc.status, "invalid_request", exc.description)
    if not decision.accepted:
        # The wallet learns that its presentation was refused and why; the agency sees the same reason.
        return _vp_error(400, "invalid_presentation", decision.reason)
    return JSONResponse({}, headers=NO_STORE)


# --------------------------------------------------------------------------------------------
# citizen sign-in: a presentation to the service itself -> a pseudonymous access token


class CitizenSessionCreate(BaseModel):
    service: str = Field(default="civitas", max_length=64, description="pseudonym context: one per service")
    scope: str | None = Field(
        default=None, max_length=200, description="subset of: " + " ".join(CITIZEN_SCOPES)
    )


class CitizenSessionCreated(BaseModel):
    id: str
    session_secret: str = Field(description="keep it; needed once to collect the token")
    client_id: str = Field(description="the service as verifier: decentralized_identifier:did:key:…")
    request_uri: str
    authorization_request_uri: str
    expires_at: int


@router.post(
    "/identity/citizen-sessions",
    status_code=201,
    summary="Start a citizen sign-in (OID4VP, BBS pseudonym); rate-limited per client",
    dependencies=[rate_limited(SIGN_IN_LIMIT)],
    responses={**RATE_LIMITED_RESPONSE, **CERTIFICATE_EXPIRED},
)
def start_citizen_session(body: CitizenSessionCreate, request: Request) -> CitizenSessionCreated:
    sessions: CitizenSessions = request.app.state.identity_sessions
    try:
        session = sessions.start(service=body.service, scope=body.scope)
    except SessionError as exc:
        raise ProblemError(400, exc.code.replace("_", "-"), "Sign-in refused", exc.description) from exc
    except VerifierError as exc:
        raise _problem(exc) from exc
    verifier = _verifier(request)
    uri = verifier.request_uri(session.request)
    return CitizenSessionCreated(
        id=session.request.id_hex,
        session_secret=session.secret,
        client_id=verifier.client_id,
        request_uri=uri,
        authorization_request_uri=_link(verifier, uri),
        expires_at=session.request.expires_ns // 1_000_000_000,
    )


class CitizenTokenRequest(BaseModel):
    session_secret: str = Field(max_length=200)


@router.post(
    "/identity/citizen-sessions/{session_id}/token",
    summary="Collect the citizen's access token (subject: the per-service pseudonym)",
    responses={400: {"description": "authorization_pending, access_denied or invalid_grant"}},
)
def citizen_token(session_id: str, body: CitizenTokenRequest, request: Request) -> JSONResponse:
    sessions: CitizenSessions = request.app.state.identity_sessions
    try:
        rid = uuid.UUID(hex=session_id).int
    except ValueError:
        return _vp_error(400, "invalid_grant", "unknown session or wrong secret")
    try:
        pseudonym, scope = sessions.redeem(rid, body.session_secret)
    except SessionError as exc:
        return _vp_error(exc.status, exc.code, exc.description)
    settings = request.app.state.settings
    now = request.app.state.clock() // 1_000_000_000
    claims = {
        "iss": settings.issuer,
        "sub": pseudonym,
        "aud": settings.api_audience,
        "client_id": WALLET_CLIENT_ID,
        "iat": now,
        "exp": now + settings.access_token_ttl_s,
        "jti": uuid.uuid4().hex,
        "scope": scope,
    }
    token = sign_jwt(request.app.state.keys, claims, typ="at+jwt")
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": settings.access_token_ttl_s,
            "scope": scope,
        },
        headers=NO_STORE,
    )
