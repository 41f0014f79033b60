"""HTTP fixtures: the real app on a fresh database (SQLite and PostgreSQL), and client helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from civitas.app import create_app
from civitas.clients import add_client
from civitas.settings import Settings

# OAuth2 requires TLS; the test client speaks "https" so the token endpoint accepts it.
BASE_URL = "https://testserver"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, max_body_bytes=64 * 1024)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.ledger.close()
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


RegisterClient = Callable[..., tuple[str, str]]
TokenFor = Callable[..., str]


@pytest.fixture
def register_client(app: FastAPI) -> RegisterClient:
    """Register an OAuth2 client with the given scopes; returns (client_id, secret)."""

    def register(scopes: str, name: str = "test client") -> tuple[str, str]:
        created, secret = add_client(app.state.engine, name, scopes)
        return created.client_id, secret

    return register


@pytest.fixture
def token_for(client: TestClient, register_client: RegisterClient) -> TokenFor:
    """A fresh client with `scopes` and an access token for it from the real token endpoint."""

    def token(scopes: str) -> str:
        client_id, secret = register_client(scopes)
        response = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def agency(token_for: TokenFor) -> dict[str, str]:
    """Headers of an agency that verifies presentations (scope identity:verify)."""
    return bearer(token_for("identity:verify"))
