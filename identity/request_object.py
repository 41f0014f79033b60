"""Signed OpenID4VP Request Objects (RFC 9101 JAR) for the ``decentralized_identifier`` prefix.

The verifier's Client Identifier is ``decentralized_identifier:<did:key of its Ed25519 key>``
(OpenID4VP 1.0 section 5.9.3). A wallet fetches the Request Object from ``request_uri`` and gets
``application/oauth-authz-req+jwt``: a compact JWS with header
``{"typ": "oauth-authz-req+jwt", "alg": "EdDSA", "kid": "did:key:z…#z…"}`` whose payload holds the
Authorization Request parameters plus ``iss`` (= ``client_id``), ``aud``
(``https://self-issued.me/v2``: static discovery, section 5.8), ``iat`` and ``exp``.

A did:key resolves offline (its DID document has one verification method, ``did#<multibase>``),
so :func:`verify_request` needs no network: the key comes from ``kid``, and the ``client_id`` must
name that same DID. The ``redirect_uri`` prefix is not supported: by the specification its
requests cannot be signed, so a wallet could not authenticate the verifier.

Request URI method ``post`` (OpenID4VP 1.0 section 5.10): the wallet may send a fresh
``wallet_nonce`` when it fetches the Request Object; the verifier signs it into the object and the
wallet refuses an object without that exact value (``expected_wallet_nonce``), so a recorded
Request Object cannot be replayed to it.
"""

from __future__ import annotations

import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

from identity import did_key, jose

__all__ = [
    "CLIENT_ID_PREFIX",
    "MEDIA_TYPE",
    "REQUEST_URI_METHODS",
    "SELF_ISSUED_AUD",
    "SIGNING_ALG",
    "TYP",
    "WALLET_NONCE_MAX_CHARS",
    "RequestObjectError",
    "check_wallet_nonce",
    "client_id_for",
    "sign_request",
    "verify_request",
]

TYP: Final = "oauth-authz-req+jwt"
MEDIA_TYPE: Final = "application/oauth-authz-req+jwt"
SELF_ISSUED_AUD: Final = "https://self-issued.me/v2"
CLIENT_ID_PREFIX: Final = "decentralized_identifier:"
SIGNING_ALG: Final = "EdDSA"
REQUEST_URI_METHODS: Final = ("get", "post")  # case-sensitive (OpenID4VP 1.0 section 5.1)
WALLET_NONCE_MAX_CHARS: Final = 128
# Visible ASCII only: base64url (the suggested encoding) fits, control characters and spaces do not.
_WALLET_NONCE: Final = re.compile(rf"[\x21-\x7e]{{1,{WALLET_NONCE_MAX_CHARS}}}")
MAX_REQUEST_CHARS: Final = 64 * 1024
CLOCK_SKEW_S: Final = 60
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class RequestObjectError(ValueError):
    """A Request Object that is unsigned, tampered, signed by another key or malformed."""


def client_id_for(jwk: Mapping[str, Any]) -> str:
    """``decentralized_identifier:did:key:z6Mk…`` for an Ed25519 JWK (private or public)."""
    try:
        return CLIENT_ID_PREFIX + did_key.from_jwk(jose.public_jwk(jwk))
    except (did_key.DidKeyError, jose.JoseFailure) as exc:
        raise RequestObjectError("a signing client is identified by an Ed25519 did:key") from exc


def sign_request(params: Mapping[str, Any], signing_jwk: Mapping[str, Any], *, iat: int, exp: int) -> str:
    """The Request Object JWS for Authorization Request ``params`` (which hold ``client_id``)."""
    client_id = client_id_for(signing_jwk)
    if params.get("client_id") != client_id:
        raise RequestObjectError("client_id of the request does not name the signing key")
    if exp <= iat:
        raise RequestObjectError("a request object must expire after it is issued")
    did = client_id[len(CLIENT_ID_PREFIX) :]
    payload = {**params, "iss": client_id, "aud": SELF_ISSUED_AUD, "iat": iat, "exp": exp}
    header = {"typ": TYP, "alg": SIGNING_ALG, "kid": did_key.verification_method_id(did)}
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return jose.sign_compact(header, body, signing_jwk)


def check_wallet_nonce(value: Any) -> str:
    """``value`` if it is a usable ``wallet_nonce``: 1 to 128 visible ASCII characters."""
    if not isinstance(value, str) or _WALLET_NONCE.fullmatch(value) is None:
        raise RequestObjectError(
            f"wallet_nonce must be 1 to {WALLET_NONCE_MAX_CHARS} visible ASCII characters"
        )
    return value


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        header = json.loads(jose.b64u_decode(token.split(".", 1)[0]))
    except (ValueError, jose.JoseFailure) as exc:
        raise RequestObjectError("request object header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise RequestObjectError("request object header must be a JSON object")
    return header


def _key_from_kid(kid: Any) -> tuple[str, dict[str, str]]:
    """The DID and public JWK a ``kid`` names; only a did:key verification method resolves."""
    if not isinstance(kid, str) or "#" not in kid:
        raise RequestObjectError("kid must be a DID URL naming the signing verification method")
    did = kid.split("#", 1)[0]
    if not did.startswith(did_key.PREFIX):
        raise RequestObjectError("kid does not resolve: only did:key verifiers are supported")
    try:
        if kid != did_key.verification_method_id(did):
            raise RequestObjectError("kid is not the did:key's verification method")
        if did_key.decode(did).key_type != "Ed25519":
            raise RequestObjectError("the did:key of a signed request must be an Ed25519 key")
        return did, did_key.to_jwk(did)
    except did_key.DidKeyError as exc:
        raise RequestObjectError(f"kid does not resolve: {exc}") from exc


def _check_response_uri(value: Any) -> None:
    if not isinstance(value, str) or len(value) > 2048:
        raise RequestObjectError("response_uri is required for response_mode direct_post")
    url = urllib.parse.urlsplit(value)
    loopback = url.scheme == "http" and url.hostname in _LOOPBACK_HOSTS
    if not (url.scheme == "https" or loopback) or not url.hostname or url.fragment:
        raise RequestObjectError("response_uri must be an https URL (http only on loopback)")


def verify_request(
    token: str,
    *,
    now: int,
    expected_client_id: str | None = None,
    expected_wallet_nonce: str | None = None,
) -> dict[str, Any]:
    """Verify a signed Request Object and return its parameters.

    Checks, in order: compact JWS with ``typ`` ``oauth-authz-req+jwt``; ``kid`` a did:key
    verification method; the signature (joserfc, EdDSA only); ``client_id`` =
    ``decentralized_identifier:`` + that DID and, when given, the ``client_id`` of the
    Authorization Request that carried ``request_uri`` (RFC 9101 section 5); when the wallet
    POSTed a ``wallet_nonce``, the same value in ``wallet_nonce``; ``iss`` (if
    present) = ``client_id``; ``aud`` = ``https://self-issued.me/v2``; ``iat``/``exp`` against
    ``now`` (60 s skew); no nested ``request``/``request_uri``; ``response_type`` ``vp_token``,
    ``response_mode`` ``direct_post`` with an https ``response_uri``, ``nonce`` and ``state``.
    """
    if not isinstance(token, str) or len(token) > MAX_REQUEST_CHARS or token.count(".") != 2:
        raise RequestObjectError("request object is not a compact JWS (unsigned requests are refused)")
    header = _unverified_header(token)
    if header.get("typ") != TYP:
        raise RequestObjectError(f"request object typ must be {TYP}")
    did, jwk = _key_from_kid(header.get("kid"))
    try:
        _, payload_bytes = jose.verify_compact(token, jose.load_key(jwk, cache=False))
    except jose.JoseFailure as exc:
        raise RequestObjectError(f"request object signature invalid ({exc.kind})") from exc
    try:
        params = json.loads(payload_bytes)
    except ValueError as exc:
        raise RequestObjectError("request object payload is not JSON") from exc
    if not isinstance(params, dict):
        raise RequestObjectError("request object payload must be a JSON object")
    client_id = params.get("client_id")
    if client_id != CLIENT_ID_PREFIX + did:
        raise RequestObjectError("client_id does not name the key that signed the request")
    if expected_client_id is not None and client_id != expected_client_id:
        raise RequestObjectError("client_id differs from the one in the authorization request")
    if expected_wallet_nonce is not None:
        got = params.get("wallet_nonce")
        if not isinstance(got, str):
            raise RequestObjectError("request object lacks the wallet_nonce the wallet sent")
        if not hmac.compare_digest(got.encode("utf-8"), expected_wallet_nonce.encode("utf-8")):
            raise RequestObjectError("wallet_nonce differs from the one the wallet sent")
    if "iss" in params and params["iss"] != client_id:
        raise RequestObjectError("iss of the request object is not its client_id")
    aud = params.get("aud")
    if aud != SELF_ISSUED_AUD and not (isinstance(aud, list) and SELF_ISSUED_AUD in aud):
        raise RequestObjectError(f"aud of the request object must be {SELF_ISSUED_AUD}")
    iat, exp = params.get("iat"), params.get("exp")
    if iat is not None and (not isinstance(iat, int) or iat > now + CLOCK_SKEW_S):
        raise RequestObjectError("request object iat is malformed or in the future")
    if exp is not None and (not isinstance(exp, int) or exp <= now - CLOCK_SKEW_S):
        raise RequestObjectError("request object expired")
    if "request" in params or "request_uri" in params:
        raise RequestObjectError("a request object must not nest request or request_uri")
    if params.get("response_type") != "vp_token":
        raise RequestObjectError("response_type must be vp_token")
    if params.get("response_mode") != "direct_post":
        raise RequestObjectError("only response_mode direct_post is supported")
    _check_response_uri(params.get("response_uri"))
    for name in ("nonce", "state"):
        value = params.get(name)
        if not isinstance(value, str) or not value or len(value) > 256:
            raise RequestObjectError(f"request object has no usable {name}")
    return params
