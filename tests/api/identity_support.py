"""Shared pieces of the identity API tests: a citizen's claims, a resident query, the service's
settings for OpenID4VP, and a wallet holding resident credentials issued over the real API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from civitas.settings import Settings
from identity import jose
from identity.wallet import Wallet

from .conftest import BASE_URL, bearer

CLAIMS: dict[str, Any] = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1950-12-10",
    "address": {"street_address": "1 Main St", "locality": "Civitas", "postal_code": "10001"},
}
RESIDENT = f"{BASE_URL}/credentials/resident"
RESIDENT_QUERY = {
    "credentials": [
        {
            "id": "res",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [RESIDENT]},
            "claims": [{"path": ["resident_of"]}],
        }
    ]
}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def identity_settings(tmp_path: Path, db_url: str, **extra: Any) -> Settings:
    """The service at BASE_URL, with room in the body limit for presentations."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        public_url=BASE_URL,
        max_body_bytes=256 * 1024,
        **extra,
    )


def resident_wallet(client: TestClient, token_for: Any, path: Path, **options: Any) -> Wallet:
    """A wallet holding two copies of a resident SD-JWT VC, on the real HTTP API."""
    offer = client.post(
        "/identity/offers",
        json={"subject_ref": "citizen-42", "claims": CLAIMS},
        headers=bearer(token_for("identity:issue")),
    ).json()
    held = Wallet.create(path, "passphrase", kdf_profile="test", http=client, **options)
    held.receive(offer["credential_offer"], tx_code=offer["tx_code"], batch_size=2)
    return held


def ask(client: TestClient, agency: dict[str, str]) -> dict[str, Any]:
    """A new presentation request for RESIDENT_QUERY."""
    created = client.post(
        "/identity/presentation-requests", json={"dcql_query": RESIDENT_QUERY}, headers=agency
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def jwt_payload(jwt: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(jose.b64u_decode(jwt.split(".")[1]))
    return claims


def jwt_header(jwt: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(jose.b64u_decode(jwt.split(".")[0]))
    return header
