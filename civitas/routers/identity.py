"""Identity area: OpenID4VCI issuance and OpenID4VP presentation, as one router for the app.

Register with ``"civitas.routers.identity"`` in ``ROUTER_MODULES``; ``setup(app)`` builds the issuer
(signing with the service key), plugs the pre-authorized code grant into the token endpoint and
builds the verifier (which trusts the service's own issuer).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from fastapi import APIRouter, FastAPI

from civitas.routers import oid4vci, oid4vp

# Endpoints whose protocol (OpenID4VCI / OpenID4VP) defines the error format, not problem+json,
# with the code it gives a malformed request.
PROTOCOL_ERROR_PATHS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "/identity/nonce": "invalid_request",
        "/identity/credential": "invalid_credential_request",
        "/identity/presentation-requests/{request_id}": "invalid_request",
        "/identity/presentation-responses": "invalid_request",
        "/identity/citizen-sessions/{session_id}/token": "invalid_request",
    }
)


router = APIRouter()
router.include_router(oid4vci.router)
router.include_router(oid4vp.router)


def setup(app: FastAPI) -> None:
    oid4vci.setup(app)
    oid4vp.setup(app)
