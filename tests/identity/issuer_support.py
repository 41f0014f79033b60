"""A configured issuer over a test engine, with a controllable clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from identity import jose, tables
from identity.issuer import CredentialConfiguration, Issuer, IssuerConfig

ISSUER_ID = "https://city.example"
RESIDENT_VCT = "https://city.example/credentials/resident"
T0_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z

RAW_CLAIMS: dict[str, Any] = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1950-12-10",
    "address": {"street_address": "1 Main St", "locality": "Civitas", "postal_code": "10001"},
}


class FakeClock:
    def __init__(self, ns: int = T0_NS) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1_000_000_000)

    @property
    def s(self) -> int:
        return self.ns // 1_000_000_000


def make_issuer(
    engine: sa.Engine, clock: FakeClock, signing_jwk: dict[str, Any] | None = None, **overrides: Any
) -> Issuer:
    tables.create_schema(engine)
    config = IssuerConfig(
        issuer_id=ISSUER_ID,
        credential_endpoint=f"{ISSUER_ID}/identity/credential",
        nonce_endpoint=f"{ISSUER_ID}/identity/nonce",
        token_endpoint=f"{ISSUER_ID}/oauth/token",
        status_list_base=f"{ISSUER_ID}/identity/status-lists",
        signing_jwk=signing_jwk or jose.generate_ed25519(),
        configurations={
            "resident": CredentialConfiguration(
                id="resident",
                vct=RESIDENT_VCT,
                display_name="City resident",
                claims=("given_name", "family_name", "birthdate", "address"),
            )
        },
        **overrides,
    )
    return Issuer(engine, config, clock=clock, today=lambda: dt.date(2026, 1, 1))
