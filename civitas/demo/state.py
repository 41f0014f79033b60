"""What the demo's clients share across phases: OAuth2 clients and their tokens, the citizens'
wallets and accounts, the devices, and small HTTP helpers."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from nacl.signing import SigningKey

from civitas.demo.city import Citizen, DeviceSpec
from civitas.demo.clock import SECOND_NS
from civitas.demo.runner import DemoContext, DemoError

__all__ = [
    "NS",
    "ApiError",
    "CitizenState",
    "Clients",
    "DeviceState",
    "MetadataCache",
    "b64u",
    "citizens_of",
    "clients_of",
    "devices_of",
    "expect_json",
    "seconds_of",
    "sign_in",
    "transfer_id",
]

NS = SECOND_NS


class MetadataCache(httpx.BaseTransport):
    """A transport that keeps `GET /.well-known/...` answers, as a wallet caches an issuer's
    metadata instead of fetching it again for every credential; everything else passes through."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self._cache: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET" or not request.url.path.startswith("/.well-known/"):
            return self._inner.handle_request(request)
        key = str(request.url)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            response = self._inner.handle_request(request)
            content = response.read()
            response.close()
            hit = (response.status_code, list(response.headers.raw), content)
            if response.status_code == 200:
                with self._lock:
                    self._cache[key] = hit
        status, headers, content = hit
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._inner.close()


class ApiError(DemoError):
    """The service answered a demo request with an unexpected status."""


def expect_json(response: httpx.Response, step: str, ok: tuple[int, ...] = (200, 201)) -> Any:
    if response.status_code not in ok:
        raise ApiError(f"{step}: HTTP {response.status_code}: {response.text[:400]}")
    return response.json()


def b64u(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def transfer_id(*parts: object) -> int:
    return uuid.uuid5(uuid.NAMESPACE_URL, "civitas-demo:" + ":".join(str(p) for p in parts)).int


@dataclass
class DeviceState:
    spec: DeviceSpec
    key: SigningKey
    device_id: str
    client_id: str
    secret: str


@dataclass
class CitizenState:
    citizen: Citizen
    wallet: Any = None  # identity.wallet.Wallet
    credentials: dict[str, Any] = field(default_factory=dict)  # configuration id -> StoredCredential
    account_id: int | None = None  # the ledger account (its id derives from the ledger pseudonym)
    allowance_id: int | None = None  # delegated to the citizen's EV
    records: dict[str, str] = field(default_factory=dict)  # consent offer key -> record id


class Clients:
    """The demo's OAuth2 clients by role, and their access tokens (renewed before they expire)."""

    def __init__(self, ctx: DemoContext) -> None:
        self.ctx = ctx
        self.credentials: dict[str, tuple[str, str]] = {}
        self._tokens: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def register(self, role: str, scopes: str) -> str:
        """What `civitas clients add --name <role> --scopes <scopes>` does."""
        from civitas.clients import add_client

        client, secret = add_client(self.ctx.server.engine, f"demo {role}", scopes, clock=self.ctx.clock)
        self.credentials[role] = (client.client_id, secret)
        return client.client_id

    def add(self, role: str, client_id: str, secret: str) -> None:
        self.credentials[role] = (client_id, secret)

    def client_id(self, role: str) -> str:
        return self.credentials[role][0]

    def token(self, role: str) -> str:
        now = self.ctx.clock()
        with self._lock:
            cached = self._tokens.get(role)
            if cached is not None and cached[1] - 60 * NS > now:
                return cached[0]
        client_id, secret = self.credentials[role]
        body = expect_json(
            self.ctx.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            ),
            f"token for {role}",
        )
        token = str(body["access_token"])
        with self._lock:
            self._tokens[role] = (token, now + int(body.get("expires_in", 300)) * NS)
        return token

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}


def clients_of(ctx: DemoContext) -> Clients:
    clients: Clients | None = ctx.state.get("clients")
    if clients is None:
        clients = ctx.state["clients"] = Clients(ctx)
    return clients


def citizens_of(ctx: DemoContext) -> list[CitizenState]:
    states: list[CitizenState] | None = ctx.state.get("citizens")
    if states is None:
        states = ctx.state["citizens"] = [CitizenState(c) for c in ctx.city.citizens]
    return states


def devices_of(ctx: DemoContext) -> dict[str, DeviceState]:
    devices: dict[str, DeviceState] = ctx.state.setdefault("devices", {})
    return devices


def seconds_of(ctx: DemoContext) -> Any:
    return lambda: ctx.clock() // NS


def sign_in(ctx: DemoContext, state: CitizenState, service: str, scope: str) -> dict[str, str]:
    """The wallet signs in to one service with a BBS presentation (`Wallet.sign_in`); the token's
    subject is the citizen's pseudonym for that service."""
    token = state.wallet.sign_in(ctx.base_url, service=service, scope=scope)
    return {"Authorization": f"Bearer {token['access_token']}"}
