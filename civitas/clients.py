"""Registered OAuth2 clients: the secret is shown once and only its SHA-256 hash is stored.

Secrets are 256-bit random strings made here, never chosen by people, so a fast cryptographic hash
already makes a stolen table useless (there is no dictionary to try); a slow password hash would
only add ~0.6 s of CPU to every token request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from civitas.tables import OAuthClient
from identity.sql import Clock, system_clock_ns

MAX_NAME_CHARS = 200
MAX_SCOPES = 32
SCOPE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789:_-.")
GRANT_TYPES = ("client_credentials",)

SECRET_HASH_PREFIX = "sha256:"
_table = OAuthClient.__table__  # type: ignore[attr-defined]


class ClientError(ValueError):
    """Bad arguments for a client operation, or an unknown client."""


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    created_ns: int
    revoked_ns: int | None
    secret_hash: str

    @property
    def active(self) -> bool:
        return self.revoked_ns is None

    def check_secret(self, secret: str) -> bool:
        return hmac.compare_digest(hash_secret(secret), self.secret_hash)


def hash_secret(secret: str) -> str:
    return SECRET_HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(text.split()))
    if not scopes or len(scopes) > MAX_SCOPES:
        raise ClientError(f"give between 1 and {MAX_SCOPES} scopes")
    for scope in scopes:
        if len(scope) > 64 or not set(scope) <= SCOPE_CHARS:
            raise ClientError(f"invalid scope {scope!r}")
    return scopes


def _row_to_client(row: sa.Row[tuple[object, ...]]) -> Client:
    m = row._mapping
    return Client(
        client_id=m["client_id"],
        name=m["name"],
        scopes=tuple(m["scopes"].split()),
        grant_types=tuple(m["grant_types"].split()),
        created_ns=m["created_ns"],
        revoked_ns=m["revoked_ns"],
        secret_hash=m["secret_hash"],
    )


def add_client(
    engine: sa.Engine,
    name: str,
    scopes: str,
    grant_types: tuple[str, ...] = GRANT_TYPES,
    clock: Clock = system_clock_ns,
) -> tuple[Client, str]:
    """Register a client; returns it with its secret, which is never stored or shown again."""
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ClientError(f"name must be 1 to {MAX_NAME_CHARS} characters")
    unknown = set(grant_types) - set(GRANT_TYPES)
    if unknown:
        raise ClientError(f"unsupported grant types: {', '.join(sorted(unknown))}")
    client_id = "c_" + secrets.token_urlsafe(12)
    secret = secrets.token_urlsafe(32)
    values = {
        "client_id": client_id,
        "name": name.strip(),
        "secret_hash": hash_secret(secret),
        "scopes": " ".join(parse_scopes(scopes)),
        "grant_types": " ".join(grant_types),
        "created_ns": clock(),
        "revoked_ns": None,
    }
    with engine.begin() as conn:
        conn.execute(_table.insert().values(**values))
    client = get_client(engine, client_id)
    if client is None:
        raise ClientError("client vanished after insert")
    return client, secret


def get_client(engine: sa.Engine, client_id: str) -> Client | None:
    if len(client_id) > 64 or "\x00" in client_id:  # no client has such an id (it arrives in Basic auth)
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(_table).where(_table.c.client_id == client_id)).first()
    return None if row is None else _row_to_client(row)


def list_clients(engine: sa.Engine) -> list[Client]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_table).order_by(_table.c.created_ns)).all()
    return [_row_to_client(r) for r in rows]


def revoke_client(engine: sa.Engine, client_id: str, clock: Clock = system_clock_ns) -> Client:
    with engine.begin() as conn:
        done = conn.execute(
            _table.update()
            .where(_table.c.client_id == client_id, _table.c.revoked_ns.is_(None))
            .values(revoked_ns=clock())
        ).rowcount
    client = get_client(engine, client_id)
    if client is None:
        raise ClientError(f"no client {client_id!r}")
    if not done and client.active:
        raise ClientError(f"could not revoke {client_id!r}")
    return client
