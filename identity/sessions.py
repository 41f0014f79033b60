"""Citizen sign-in: a BBS presentation to the service itself turns into a pseudonymous session.

1. :meth:`CitizenSessions.start` creates an OpenID4VP request (DCQL: a city resident BBS credential,
   no claims disclosed) with the pseudonym context of one service, plus a one-time session secret
   for whoever started the sign-in (the app screen that shows the QR code).
2. The wallet answers the request like any other (``direct_post``).
3. :meth:`CitizenSessions.redeem` with the secret returns the verified pseudonym once; the service
   mints an access token whose subject is that pseudonym.

The same credential always yields the same pseudonym for one service context and unlinkable ones
for different services. Nothing but the pseudonym is learned: by default the request does not ask
for the credential's status-list reference (see ``require_status``), so a revoked credential
signs in until it expires (30 days for the city's BBS credential).

Starting a sign-in stores a request and a session; each start also deletes up to
``PURGE_BATCH`` expired sign-ins (session, request and decision), so storage stays bounded by the
start rate (which the service rate-limits per client) times the session lifetime.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa

from identity import dcql
from identity import tables as t
from identity.verifier import PresentationRequest, Verifier

__all__ = ["CitizenSession", "CitizenSessions", "SessionError"]

SESSION_OWNER: Final = "civitas:citizen-sessions"
NS: Final = 1_000_000_000
PURGE_BATCH: Final = 100
_SERVICE_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class SessionError(Exception):
    """Unknown session, wrong secret, not (yet) verified, or already used."""

    def __init__(self, code: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class CitizenSession:
    request: PresentationRequest
    secret: str
    service: str
    scope: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class CitizenSessions:
    def __init__(
        self,
        verifier: Verifier,
        *,
        vct_values: Sequence[str],
        context_base: str,
        allowed_scopes: Iterable[str],
        default_scope: str,
        require_status: bool = False,
    ) -> None:
        # Off by default: the status index is global, so disclosing it would link a citizen's
        # pseudonyms across services and, for the issuer, to the issuance record (who it is).
        self.require_status = require_status
        self.verifier = verifier
        self.vct_values = list(vct_values)
        self.context_base = context_base.rstrip("/")
        self.allowed_scopes = frozenset(allowed_scopes)
        self.default_scope = default_scope

    def context_for(self, service: str) -> str:
        """The pseudonym context of one service: pseudonyms differ (unlinkably) between services."""
        return f"{self.context_base}/services/{service}"

    def start(self, *, service: str = "civitas", scope: str | None = None) -> CitizenSession:
        if not service or len(service) > 64 or not _SERVICE_CHARS.issuperset(service):
            raise SessionError("invalid_request", "service is 1-64 characters of a-z 0-9 -")
        wanted = (scope or self.default_scope).split()
        if not wanted or not self.allowed_scopes.issuperset(wanted):
            raise SessionError("invalid_scope", f"citizen scopes are {' '.join(sorted(self.allowed_scopes))}")
        query = {
            "credentials": [
                {"id": "citizen", "format": dcql.BBS_FORMAT, "meta": {"vct_values": self.vct_values}},
            ]
        }
        request = self.verifier.create_request(
            SESSION_OWNER,
            dcql_query=query,
            pseudonym_context=self.context_for(service),
            require_status=self.require_status,
        )
        secret = secrets.token_urlsafe(32)
        with self.verifier.engine.begin() as conn:
            _purge_expired(conn, request.created_ns)
            conn.execute(
                t.citizen_sessions.insert().values(
                    request_id=request.id,
                    secret_hash=_hash(secret),
                    service=service,
                    scope=" ".join(dict.fromkeys(wanted)),
                    created_ns=request.created_ns,
                    expires_ns=request.expires_ns + self.verifier.config.request_ttl_s * NS,
                    token_issued_ns=None,
                )
            )
        return CitizenSession(request, secret, service, " ".join(dict.fromkeys(wanted)))

    def redeem(self, request_id: int, secret: str) -> tuple[str, str]:
        """Single use: the verified pseudonym and the granted scope for a completed sign-in."""
        now = self.verifier.clock()
        with self.verifier.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(t.citizen_sessions).where(t.citizen_sessions.c.request_id == request_id)
                )
                .mappings()
                .first()
            )
        if (
            row is None
            or not isinstance(secret, str)
            or not secrets.compare_digest(_hash(secret), row["secret_hash"])
        ):
            raise SessionError("invalid_grant", "unknown session or wrong secret")
        if row["token_issued_ns"] is not None:
            raise SessionError("invalid_grant", "this sign-in was already used")
        if row["expires_ns"] <= now:
            raise SessionError("invalid_grant", "this sign-in expired")
        decision = self.verifier.result(request_id, owner=SESSION_OWNER)
        if decision is None:
            raise SessionError("authorization_pending", "the wallet has not answered yet")
        if not decision.accepted or not decision.pseudonym:
            raise SessionError("access_denied", f"presentation refused: {decision.reason}")
        with self.verifier.engine.begin() as conn:
            claimed = conn.execute(
                t.citizen_sessions.update()
                .where(
                    t.citizen_sessions.c.request_id == request_id,
                    t.citizen_sessions.c.token_issued_ns.is_(None),
                )
                .values(token_issued_ns=now)
            )
            if claimed.rowcount != 1:
                raise SessionError("invalid_grant", "this sign-in was already used")
        return decision.pseudonym, str(row["scope"])


def _purge_expired(conn: sa.Connection, now: int) -> int:
    """Delete up to PURGE_BATCH expired sign-ins with their request and decision rows."""
    ids = (
        conn.execute(
            sa.select(t.citizen_sessions.c.request_id)
            .where(t.citizen_sessions.c.expires_ns <= now)
            .order_by(t.citizen_sessions.c.expires_ns)
            .limit(PURGE_BATCH)
        )
        .scalars()
        .all()
    )
    if ids:
        conn.execute(t.presentation_results.delete().where(t.presentation_results.c.request_id.in_(ids)))
        conn.execute(t.citizen_sessions.delete().where(t.citizen_sessions.c.request_id.in_(ids)))
        conn.execute(t.presentation_requests.delete().where(t.presentation_requests.c.id.in_(ids)))
    return len(ids)
