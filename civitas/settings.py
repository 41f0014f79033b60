"""Service settings from environment variables prefixed `CIVITAS_` (e.g. CIVITAS_DATA_DIR)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVITAS_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path(".civitas"), description="where keys and the SQLite file live")
    database_url: str | None = Field(default=None, description="default: SQLite in the data dir")
    public_url: str = Field(default="http://127.0.0.1:8000", description="base URL clients use")
    api_audience: str = Field(default="civitas-api", description="`aud` of access tokens")
    access_token_ttl_s: int = Field(default=300, ge=30, le=3600)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Unauthenticated identity endpoints (POST /identity/nonce, POST /identity/citizen-sessions):
    # a token bucket per client address and endpoint (IPv6 grouped by /64), per service process.
    identity_rate_limit_per_min: int = Field(default=30, ge=1, le=10_000_000)
    identity_rate_limit_burst: int = Field(default=10, ge=1, le=10_000_000)
    # Production keys may come from the environment instead of the data dir.
    signing_key: SecretStr | None = Field(default=None, description="base64url Ed25519 seed")
    log_level: str = "info"
    # OpenID4VP verifier identity: with a certificate chain (PEM, leaf first, then intermediates)
    # Request Objects are signed as x509_san_dns:<public_url host> (or x509_hash), else as the
    # service's did:key. See civitas/verifier_cert.py and `civitas keys verifier-csr`.
    verifier_x509_chain: Path | None = Field(default=None, description="PEM certificate chain, leaf first")
    verifier_x509_key: Path | None = Field(
        default=None, description="PEM key of the leaf (default: keys/verifier-x509-key.pem in the data dir)"
    )
    verifier_client_id_prefix: Literal["x509_san_dns", "x509_hash"] = "x509_san_dns"
    # Rewards: accepted personal readings earn `rate` micro-units per reading of their category,
    # paid from the city's incentive ledger account. No account id: rewards are off.
    reward_incentive_account_id: int | None = Field(default=None, ge=1, lt=1 << 128)
    reward_rates_micros: dict[str, int] = Field(
        default_factory=dict, description='JSON, e.g. {"pd:Location": 200}'
    )
    # Analytics: who the analytics pipeline is as a consent recipient, and the daily privacy budgets
    # (zCDP rho). Districts default to the consent minimiser's grid.
    analytics_recipient: str = "civitas-analytics"
    analytics_purpose: str = "dpv:ProvideOfficialStatistics"
    analytics_districts: str | None = Field(default=None, description="comma-separated public district keys")
    analytics_dataset_rho_per_day: float = Field(default=1.0, gt=0, le=10)
    analytics_analyst_rho_per_day: float = Field(default=0.25, gt=0, le=10)
    analytics_public_rho_per_day: float = Field(
        default=0.5, gt=0, le=10, description="the dashboard's budget"
    )
    # Ledger witnesses whose cosignatures POST /ledger/cosignatures accepts: C2SP cosignature verifier
    # keys (`<name>+<key ID>+<base64(0x04 || key)>`), separated by commas or whitespace.
    ledger_witness_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated C2SP cosignature verifier keys (at most 32)"
    )

    @field_validator("ledger_witness_keys", mode="before")
    @classmethod
    def _split_witness_keys(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = tuple(k for k in v.replace(",", " ").split() if k)
        if isinstance(v, (list, tuple)):
            from ledger.cosignatures import parse_witness_keys  # checks type, duplicates and the limit

            parse_witness_keys([str(k) for k in v])
        return v

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'civitas.db').resolve()}"

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")


def get_settings() -> Settings:
    return Settings()
