"""Identity area: OpenID4VCI issuance and OpenID4VP presentation, as one router for the app.

Register with ``"civitas.routers.identity"`` in ``ROUTER_MODULES``; ``setup(app)`` builds the issuer
(signing with the service key), plugs the pre-authorized code grant into the token endpoint and
builds the verifier (which trusts the service's own issuer).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from civitas.routers import oid4vci, oid4vp

# Endpoints whose protocol (OpenID4VCI / OpenID4VP) defines the error format, not problem+json.
PROTOCOL_ERROR_PATHS = frozenset(
    {
        "/identity/nonce",
        "/identity/credential",
        "/identity/presentation-requests/{request_id}",
        "/identity/presentation-responses",
        "/identity/citizen-sessions/{session_id}/token",
    }
)

router = APIRouter()
router.include_router(oid4vci.router)
router.include_router(oid4vp.router)


def setup(app: FastAPI) -> None:
    oid4vci.setup(app)
    oid4vp.setup(app)
