"""RFC 9457 problem details for every error the service returns.

Routers raise `ProblemError`; validation errors, unknown routes and unexpected exceptions are
rendered the same way, without stack traces or internals. Protocol endpoints that define their
own error format (the OAuth2 token endpoint, OpenID4VCI/VP) return those formats instead.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_TYPE_PREFIX = "urn:civitas:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"

log = logging.getLogger("civitas")


class ProblemError(Exception):
    """An error to render as problem+json: `type` is a short stable slug such as `over-budget`."""

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    status: int,
    type: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_TYPE_PREFIX + type, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def protocol_error_response(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The ``{"error", "error_description"}`` body of OAuth2 (RFC 6749 5.2) and OpenID4VC errors."""
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def _malformed_request_code(request: Request) -> str | None:
    """The error code a protocol endpoint gives a malformed request; None on other endpoints."""
    route = request.scope.get("route")
    code: str | None = request.app.state.protocol_error_paths.get(getattr(route, "path", None))
    return code


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
}


def _field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        # The field path without the leading "body"/"query" location marker.
        where = loc[0] if loc else "body"
        field = ".".join(loc[1:]) if len(loc) > 1 else where
        # `msg` is pydantic's description; the offending input value is deliberately not echoed.
        out.append({"in": where, "field": field, "message": str(err.get("msg", "invalid"))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status, exc.type, exc.title, exc.detail, request.url.path, exc.headers, **exc.extensions
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        malformed = _malformed_request_code(request)
        if malformed is not None:
            return protocol_error_response(400, malformed, f"invalid fields: {fields}")
        return problem_response(
            422,
            "validation-error",
            "Request validation failed",
            f"invalid fields: {fields}",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        malformed = _malformed_request_code(request)  # None when no route matched (404)
        if malformed is not None:
            return protocol_error_response(
                exc.status_code, malformed, detail or title, dict(exc.headers or {})
            )
        return problem_response(
            exc.status_code, slug, title, detail, request.url.path, dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return problem_response(500, "internal-error", "Internal server error", None, request.url.path)


# An odd run of backslashes before "u0000" is a JSON escape of U+0000; an even run is literal text.
_JSON_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
NUL_REFUSED = "U+0000 (NUL) is not accepted in any part of a request"


def _carries_nul(scope: Scope, content_type: str, body: bytes) -> bool:
    query = scope["query_string"]
    if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query or b"\x00" in body:
        return True
    if content_type.startswith("application/x-www-form-urlencoded"):
        return b"%00" in body
    if "json" in content_type:
        return b"\\u0000" in body and _JSON_NUL_ESCAPE.search(body) is not None
    return False


async def refuse_nul(request: Request) -> None:
    """Refuse a request carrying U+0000 in its path, query or body, before any handler sees it.

    PostgreSQL text cannot hold the character, and nothing in this API has a use for it; refusing
    it up front keeps a stray one from reaching the database (a 500) and behaves the same on
    every database. Endpoints with a protocol error format answer in that format.
    """
    body = await request.body()  # cached: the handler's own parsing reads the same bytes
    if _carries_nul(request.scope, request.headers.get("content-type", "").lower(), body):
        raise StarletteHTTPException(400, NUL_REFUSED)  # rendered in the endpoint's format


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not Content-Length is sent.

    The refusal is raised when the body is read, so it renders like any error of the endpoint
    (problem+json, or the protocol's format); a declared length over the limit is refused before
    a byte of the body is read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        limit = self.max_bytes
        declared_over = declared is not None and (not declared.isdigit() or int(declared) > limit)
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            if declared_over:
                raise StarletteHTTPException(413, f"the limit is {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException so body parsers pass it through and it renders as 413.
                    raise StarletteHTTPException(413, f"the limit is {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)
