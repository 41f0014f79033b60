"""Tables of the service itself (domain tables live in their packages)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String
from sqlmodel import Field, SQLModel


class OAuthClient(SQLModel, table=True):
    """A registered OAuth2 client; only a hash of its secret is stored."""

    __tablename__ = "oauth_clients"

    client_id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    secret_hash: str = Field(sa_column=Column(String(200), nullable=False))
    scopes: str = Field(sa_column=Column(String(2000), nullable=False))
    grant_types: str = Field(sa_column=Column(String(200), nullable=False))
    created_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


SERVICE_TABLES = [OAuthClient.__table__]
