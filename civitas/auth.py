"""OAuth2 for the service (authlib): the token endpoint's server and bearer-token checks.

Access tokens are RFC 9068 JWTs signed with the service's Ed25519 key (EdDSA), carrying
`scope`, `aud` and a short `exp`. The token endpoint runs authlib's `AuthorizationServer`
with the client_credentials grant; other grants (the OpenID4VCI pre-authorized code) plug
in through `register_grant`. Routes ask for a scope with `require_scope("ledger:write")`.
"""

from __future__ import annotations

import secrets
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import sqlalchemy as sa
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from fastapi import Depends, Request
from joserfc import jwt
from joserfc.errors import JoseError

from civitas.clients import Client, get_client
from civitas.errors import ProblemError
from civitas.keys import KeyStore
from civitas.settings import Settings
from identity.sql import Clock

# Tokens issued to citizens' wallets (public clients) name one of these as `client_id`;
# every other `client_id` must be a registered, unrevoked client when the token is used.
PUBLIC_CLIENT_IDS = frozenset({"wallet"})
TOKEN_ALG = "EdDSA"
# RFC 9864 prefers the fully specified "Ed25519"; access tokens keep "EdDSA", which every JOSE
# library accepts, so joserfc's deprecation notice is expected here, not a problem.
warnings.filterwarnings("ignore", message="EdDSA is deprecated via RFC 9864")
MAX_TOKEN_CHARS = 8192
# Tokens whose signature was checked, remembered so a client's next request skips the check.
VERIFIED_TOKEN_CACHE = 4096


@dataclass(frozen=True)
class Principal:
    """Who called: `subject` is a client id, or a citizen's per-service pseudonym."""

    subject: str
    client_id: str
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class _ClientAdapter(ClientMixin):  # type: ignore[misc]
    """authlib's view of a registered client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.client.scopes
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types


class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]


class _TokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens, signed EdDSA with the current service key (its kid in the header)."""

    def __init__(self, settings: Settings, keys: KeyStore, clock: Clock) -> None:
        super().__init__(issuer=settings.issuer, alg=TOKEN_ALG)
        self._settings = settings
        self._keys = keys
        self._clock = clock

    def access_token_generator(self, client: Any, grant_type: str, user: Any, scope: str) -> str:
        now = self._clock() // 1_000_000_000
        subject = user.get_user_id() if user is not None else client.get_client_id()
        claims = {
            "iss": self.issuer,
            "sub": str(subject),
            "aud": self._settings.api_audience,
            "client_id": client.get_client_id(),
            "iat": now,
            "exp": now + self._settings.access_token_ttl_s,
            "jti": secrets.token_urlsafe(16),
            "scope": scope,
        }
        return sign_jwt(self._keys, claims, typ="at+jwt")

    def _get_expires_in(self, client: Any, grant_type: str) -> int:
        return self._settings.access_token_ttl_s


class _FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: Mapping[str, str]) -> None:
        self._data = dict(form)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {k: [v] for k, v in self._data.items()}


class _OAuthRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: TokenRequest) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        self._form = dict(request.form)
        self.payload = _FormPayload(self._form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class TokenRequest:
    """What the token endpoint read from HTTP, handed to authlib off the event loop."""

    method: str
    url: str
    headers: Mapping[str, str]
    form: Mapping[str, str]


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's authorization server bound to our client table and signing key."""

    def __init__(self, engine: sa.Engine, settings: Settings, keys: KeyStore, clock: Clock) -> None:
        super().__init__(scopes_supported=None)
        self._engine = engine
        self.settings = settings
        self.keys = keys
        self.clock = clock
        self.register_token_generator("default", _TokenGenerator(settings, keys, clock))
        self.register_grant(_ClientCredentialsGrant)

    def query_client(self, client_id: str) -> _ClientAdapter | None:
        client = get_client(self._engine, client_id)
        return _ClientAdapter(client) if client is not None and client.active else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """JWT access tokens are self-contained; nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal bus here."""

    def create_oauth2_request(self, request: TokenRequest) -> OAuth2Request:
        return _OAuthRequest(request)

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        return status, body, dict(headers)

    def token_response(self, request: TokenRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        result: tuple[int, dict[str, Any], dict[str, str]] = self.create_token_response(request)
        return result


def sign_jwt(keys: KeyStore, claims: Mapping[str, Any], *, typ: str, key_name: str = "service") -> str:
    """Sign claims as a compact JWS with the current key of `key_name` (EdDSA, kid in the header)."""
    key = keys.current(key_name)
    header = {"alg": TOKEN_ALG, "typ": typ, "kid": key.kid}
    return jwt.encode(header, dict(claims), key.private_jwk(), algorithms=[TOKEN_ALG])


class TokenVerifier:
    """Checks bearer tokens: signature by a current or retired service key, EdDSA only,
    `typ` at+jwt, issuer, audience, expiry, and that the client is still registered and active."""

    def __init__(self, engine: sa.Engine, settings: Settings, keys: KeyStore, clock: Clock) -> None:
        self._engine = engine
        self._keys = keys
        self._clock = clock
        self._claims = jwt.JWTClaimsRegistry(
            now=lambda: self._clock() // 1_000_000_000,
            leeway=5,
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.api_audience},
            exp={"essential": True},
            sub={"essential": True},
            client_id={"essential": True},
        )
        self._verified: dict[str, tuple[object, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _signed_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token signed by a current or retired service key with `typ` at+jwt.

        A token that passed is remembered with the key set that checked it (bounded, oldest
        first out); a rotation makes a new key set, so cached entries stop matching.
        """
        keyset = self._keys.verification_keyset("service")
        with self._lock:
            hit = self._verified.get(token)
        if hit is not None and hit[0] is keyset:
            return hit[1]
        try:
            decoded = jwt.decode(token, keyset, algorithms=[TOKEN_ALG])
        except JoseError as exc:
            raise _unauthorized("invalid_token", "the access token is invalid or expired") from exc
        except ValueError as exc:  # undecodable base64/JSON
            raise _unauthorized("invalid_token", "malformed token") from exc
        if decoded.header.get("typ") != "at+jwt":
            raise _unauthorized("invalid_token", "not an access token")
        with self._lock:
            if len(self._verified) >= VERIFIED_TOKEN_CACHE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (keyset, decoded.claims)
        return decoded.claims

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise _unauthorized("invalid_token", "malformed token")
        claims = self._signed_claims(token)
        try:  # expiry and the rest are checked on every use, cached or not
            self._claims.validate(claims)
        except JoseError as exc:
            raise _unauthorized("invalid_token", "the access token is invalid or expired") from exc
        client_id = str(claims["client_id"])
        if client_id not in PUBLIC_CLIENT_IDS:
            client = get_client(self._engine, client_id)
            if client is None or not client.active:
                raise _unauthorized("invalid_token", "the client of this token is not active")
        scopes = frozenset(str(claims.get("scope") or "").split())
        return Principal(subject=str(claims["sub"]), client_id=client_id, scopes=scopes, claims=dict(claims))


def _unauthorized(error: str, detail: str) -> ProblemError:
    return ProblemError(
        401,
        "unauthorized",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(
            401,
            "unauthorized",
            "Authentication required",
            "send an OAuth2 bearer access token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def current_principal(request: Request) -> Principal:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(bearer_token(request))


async def _current_principal(request: Request) -> Principal:
    # Runs on the event loop: the check is a signature verification plus one primary-key lookup,
    # cheaper than the two thread-pool hops a sync dependency costs on every request.
    return current_principal(request)


def require_scope(*scopes: str) -> Any:
    """A dependency that authenticates the caller and requires every scope given."""

    async def dependency(principal: Annotated[Principal, Depends(_current_principal)]) -> Principal:
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise ProblemError(
                403,
                "insufficient-scope",
                "Insufficient scope",
                f"this operation needs the scope {' '.join(missing)}",
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
                },
            )
        return principal

    return Depends(dependency)


def Scoped(*scopes: str) -> Any:
    """`principal: Scoped("ledger:write")` is `Annotated[Principal, require_scope(...)]`."""
    return Annotated[Principal, require_scope(*scopes)]
