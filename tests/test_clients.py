"""OAuth2 client registry: secrets are random, shown once, stored only as a hash."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from civitas.clients import ClientError, add_client, get_client, parse_scopes, revoke_client
from civitas.db import migrate
from civitas.tables import OAuthClient


def test_secret_is_stored_only_as_a_hash(engine: sa.Engine) -> None:
    migrate(engine)
    client, secret = add_client(engine, "Transit agency", "identity:verify")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(OAuthClient.__table__)).one()._mapping  # type: ignore[attr-defined]
    assert secret not in str(dict(stored)) and stored["secret_hash"].startswith("sha256:")
    loaded = get_client(engine, client.client_id)
    assert loaded is not None and loaded.check_secret(secret)
    assert not loaded.check_secret(secret[:-1]) and not loaded.check_secret("")
    other, other_secret = add_client(engine, "Transit agency", "identity:verify")
    assert other_secret != secret and other.client_id != client.client_id


def test_revoke_is_final_and_unknown_clients_are_errors(engine: sa.Engine) -> None:
    migrate(engine)
    client, _ = add_client(engine, "x", "a:b")
    assert not revoke_client(engine, client.client_id).active
    assert not revoke_client(engine, client.client_id).active  # idempotent
    with pytest.raises(ClientError):
        revoke_client(engine, "c_unknown")


@pytest.mark.parametrize(
    "scopes", ["", "UPPER", "a" * 65, " ".join(f"s{i}" for i in range(33)), "semi;colon"]
)
def test_bad_scopes_are_refused(scopes: str) -> None:
    with pytest.raises(ClientError):
        parse_scopes(scopes)


def test_scopes_keep_order_without_duplicates() -> None:
    assert parse_scopes("b a b") == ("b", "a")
    assert len(parse_scopes(" ".join(f"s{i}" for i in range(32)))) == 32
