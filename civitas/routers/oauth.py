"""The OAuth2 token endpoint (RFC 6749): errors use RFC 6749 section 5.2's JSON, not problem+json."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from civitas.auth import OAuthServer, TokenRequest
from civitas.errors import protocol_error_response

router = APIRouter(tags=["oauth"])
PROTOCOL_ERROR_PATHS: Final[Mapping[str, str]] = MappingProxyType({"/oauth/token": "invalid_request"})

MAX_FORM_FIELDS = 32

_TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "RFC 6749 error: invalid_request, invalid_grant, unsupported_grant_type, ..."},
    401: {"description": "RFC 6749 error: invalid_client"},
}


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return protocol_error_response(status, error, description, {"Pragma": "no-cache"})


def _basic_credentials_readable(authorization: str | None) -> bool:
    """Whether Basic credentials, if that is the scheme, decode to text (authlib raises otherwise)."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return True
    try:
        base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return True


@router.post(
    "/oauth/token",
    summary="Issue an access token (client_credentials, and grants registered by other areas)",
    responses=_TOKEN_RESPONSES,
)
async def token(request: Request) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _oauth_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str) or key in fields:
            return _oauth_error(400, "invalid_request", f"parameter {key!r} must be sent once, as text")
        fields[key] = value
    if not _basic_credentials_readable(request.headers.get("authorization")):
        return _oauth_error(401, "invalid_client", "Basic credentials must be base64 of UTF-8 text")
    server: OAuthServer = request.app.state.oauth_server
    req = TokenRequest(request.method, str(request.url), request.headers, fields)
    status, body, headers = await run_in_threadpool(server.token_response, req)
    return JSONResponse(body, status_code=status, headers=headers)
