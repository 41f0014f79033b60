"""The FastAPI application: composes settings, database, keys, OAuth2 and every area's router."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from civitas import __version__
from civitas.auth import OAuthServer, TokenVerifier
from civitas.db import create_engine, migrate
from civitas.errors import BodySizeLimit, install_error_handlers, refuse_nul
from civitas.keys import KeyStore
from civitas.settings import Settings
from identity.sql import Clock, system_clock_ns

# Routers in the order they appear in the API document; an area's module exposes `router`,
# optionally `setup(app)` to attach its services to `app.state`, and optionally
# `PROTOCOL_ERROR_PATHS`: paths whose protocol defines its own error format.
ROUTER_MODULES = (
    "civitas.routers.health",
    "civitas.routers.oauth",
    "civitas.routers.identity",
    "civitas.routers.ledger",
    "civitas.routers.consent",
    "civitas.routers.analytics",
)

DESCRIPTION = (
    "Privacy-preserving identity, consent and micropayments for a city. Errors are RFC 9457 "
    "problem+json except where a protocol defines its own format (the OAuth2 token endpoint)."
)


def create_app(
    settings: Settings | None = None,
    *,
    engine: sa.Engine | None = None,
    clock: Clock = system_clock_ns,
    run_migrations: bool = True,
) -> FastAPI:
    settings = settings or Settings()
    logging.getLogger("civitas").setLevel(settings.log_level.upper())
    engine = engine or create_engine(settings)
    if run_migrations:
        migrate(engine)
    signing_key = settings.signing_key.get_secret_value() if settings.signing_key else None
    keys = KeyStore.open(settings.data_dir, signing_key)

    app = FastAPI(
        title="Civitas", version=__version__, description=DESCRIPTION, dependencies=[Depends(refuse_nul)]
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.keys = keys
    app.state.clock = clock
    app.state.oauth_server = OAuthServer(engine, settings, keys, clock)
    app.state.token_verifier = TokenVerifier(engine, settings, keys, clock)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    protocol_paths: dict[str, str] = {}
    for name in ROUTER_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "setup"):
            module.setup(app)
        app.include_router(module.router)
        protocol_paths.update(getattr(module, "PROTOCOL_ERROR_PATHS", {}))
    app.state.protocol_error_paths = protocol_paths
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri", "example": "urn:civitas:problem:validation-error"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """Describe errors as they are sent: problem+json (validation included), not FastAPI's default."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path in app.state.protocol_error_paths:
                responses.pop("422", None)
                continue
            if "422" in responses:
                responses["422"] = {"description": "Validation error", "content": problem}
            responses["default"] = {"description": "Error (RFC 9457 problem details)", "content": problem}
    app.openapi_schema = schema
    return schema


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`--factory`); migrations already ran in `civitas serve`."""
    return create_app(run_migrations=False)
