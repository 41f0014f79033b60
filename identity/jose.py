"""Thin JOSE layer over joserfc: key import with a cache, compact JWS sign/verify, base64url.

Every JWS/JWT in the identity package goes through here, so algorithm policy lives in one place:
EdDSA (and its fully specified name Ed25519) for OKP Ed25519 keys, ES256 for EC P-256 keys.
Nothing else is ever accepted; ``alg: none`` in particular can never verify.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import nacl.exceptions
import nacl.signing
from joserfc import jws
from joserfc._rfc7515.model import JWSAlgModel  # the documented base for custom algorithms
from joserfc.errors import JoseError, MissingAlgorithmError, UnsupportedAlgorithmError
from joserfc.jwk import ECKey, OKPKey, import_key
from joserfc.jws import JWSRegistry

__all__ = [
    "JoseFailure",
    "Key",
    "algs_for",
    "b64u_decode",
    "b64u_encode",
    "default_alg",
    "generate_ec_p256",
    "generate_ed25519",
    "load_key",
    "public_jwk",
    "sign_compact",
    "verify_compact",
]

Key = ECKey | OKPKey

_EDDSA_ALGS: Final = ("EdDSA", "Ed25519")
_ES256_ALGS: Final = ("ES256",)
_B64U_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_CACHE_LIMIT: Final = 4096

# joserfc flags the polymorphic "EdDSA" name (RFC 9864 prefers "Ed25519"); SD-JWT VC, OID4VCI and
# the peers we interoperate with still use "EdDSA", so that warning is silenced (and only that one).
warnings.filterwarnings("ignore", message="EdDSA is deprecated")


class JoseFailure(ValueError):
    """A key, signature or encoding problem (callers turn it into their own error type).

    ``kind`` is ``"alg"`` (algorithm missing or not accepted), ``"signature"`` or ``"format"``.
    """

    def __init__(self, message: str, kind: str = "format") -> None:
        super().__init__(message)
        self.kind = kind


class _SodiumEd25519(JWSAlgModel):
    """EdDSA over Ed25519 with libsodium (PyNaCl): the same JWS, about twice as fast to verify
    as the OpenSSL binding on small machines. Ed448 keys are not accepted anywhere here."""

    key_type = "OKP"
    description = "EdDSA (Ed25519) via libsodium"
    security_warning = None

    def __init__(self, name: str) -> None:
        self.name = name

    def sign(self, msg: bytes, key: OKPKey) -> bytes:
        signer = _nacl_keys(key)[1]
        if signer is None:
            raise JoseFailure("signing needs a private key")
        return bytes(signer.sign(msg).signature)

    def verify(self, msg: bytes, sig: bytes, key: OKPKey) -> bool:
        try:
            _nacl_keys(key)[0].verify(msg, sig)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True


_NaclPair = tuple[nacl.signing.VerifyKey, nacl.signing.SigningKey | None]
# joserfc keys are unhashable; index by id() and keep a weak reference to detect reuse of an id.
_NACL: dict[int, tuple[weakref.ref[OKPKey], _NaclPair]] = {}
_NACL_LOCK = threading.Lock()


def _nacl_keys(key: OKPKey) -> _NaclPair:
    hit = _NACL.get(id(key))
    if hit is not None and hit[0]() is key:
        return hit[1]
    data = key.as_dict(private=key.is_private)
    if data.get("crv") != "Ed25519":
        raise JoseFailure("only Ed25519 OKP keys are supported")
    verify_key = nacl.signing.VerifyKey(b64u_decode(str(data["x"])))
    signer = nacl.signing.SigningKey(b64u_decode(str(data["d"]))) if "d" in data else None
    pair = (verify_key, signer)
    with _NACL_LOCK:
        if len(_NACL) >= _CACHE_LIMIT:
            _NACL.clear()
        _NACL[id(key)] = (weakref.ref(key), pair)
    return pair


class _Registry(JWSRegistry):
    algorithms: dict[str, JWSAlgModel] = {  # noqa: RUF012 - class-level like the base registry
        **JWSRegistry.algorithms,
        "EdDSA": _SodiumEd25519("EdDSA"),
        "Ed25519": _SodiumEd25519("Ed25519"),
    }
    recommended: list[str] = list(JWSRegistry.recommended)  # noqa: RUF012


_REGISTRIES: Final = {
    "OKP": _Registry(algorithms=_EDDSA_ALGS),
    "EC": _Registry(algorithms=_ES256_ALGS),
}


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2)."""
    if not isinstance(text, str) or len(text) % 4 == 1 or not _B64U_CHARS.issuperset(text):
        raise JoseFailure("invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JoseFailure("invalid base64url") from exc


class _KeyCache:
    """Parsed keys keyed by their canonical JWK JSON; parsing a JWK costs more than verifying."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: OrderedDict[object, Key] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, jwk: Mapping[str, Any]) -> Key:
        try:
            cache_key: object = tuple(sorted(jwk.items()))
            hash(cache_key)
        except TypeError:  # a member that is not hashable (e.g. x5c list): fall back to JSON text
            try:
                cache_key = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                raise JoseFailure("JWK is not JSON") from exc
        with self._lock:
            hit = self._items.get(cache_key)
            if hit is not None:
                self._items.move_to_end(cache_key)
                return hit
        key = _import(jwk)
        with self._lock:
            self._items[cache_key] = key
            if len(self._items) > self._limit:
                self._items.popitem(last=False)
        return key


def _import(jwk: Mapping[str, Any]) -> Key:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not ((kty == "OKP" and crv == "Ed25519") or (kty == "EC" and crv == "P-256")):
        raise JoseFailure(f"unsupported key type {kty!r}/{crv!r}: only OKP Ed25519 and EC P-256")
    try:
        key = import_key(dict(jwk))
    except (JoseError, ValueError, TypeError) as exc:
        raise JoseFailure(f"invalid JWK: {exc}") from exc
    if not isinstance(key, ECKey | OKPKey):
        raise JoseFailure("unsupported key type")
    return key


_CACHE = _KeyCache(_CACHE_LIMIT)


def load_key(jwk: Mapping[str, Any], *, cache: bool = True) -> Key:
    """Import a JWK; only Ed25519 and P-256 keys are accepted.

    Long-lived keys (issuers) are cached; pass ``cache=False`` for single-use keys such as a
    holder's ``cnf.jwk`` (caching them would only evict the issuer keys).
    """
    if not isinstance(jwk, Mapping):
        raise JoseFailure("JWK must be a JSON object")
    return _CACHE.get(jwk) if cache else _import(jwk)


def algs_for(key: Key) -> tuple[str, ...]:
    return _EDDSA_ALGS if isinstance(key, OKPKey) else _ES256_ALGS


def default_alg(key: Key) -> str:
    return "EdDSA" if isinstance(key, OKPKey) else "ES256"


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """The public members of a JWK (drops ``d`` and anything not needed to verify)."""
    key = load_key(jwk)
    out: dict[str, Any] = dict(key.as_dict(private=False))
    if "kid" in jwk:
        out["kid"] = jwk["kid"]
    return out


def generate_ed25519() -> dict[str, Any]:
    return dict(OKPKey.generate_key("Ed25519", private=True).as_dict(private=True))


def generate_ec_p256() -> dict[str, Any]:
    return dict(ECKey.generate_key("P-256", private=True).as_dict(private=True))


def sign_compact(header: Mapping[str, Any], payload: bytes, private_jwk: Mapping[str, Any]) -> str:
    """Compact JWS; ``alg`` defaults from the key type and must suit it."""
    key = load_key(private_jwk)
    if not key.is_private:
        raise JoseFailure("signing needs a private key")
    protected = dict(header)
    alg = protected.setdefault("alg", default_alg(key))
    if alg not in algs_for(key):
        raise JoseFailure(f"alg {alg!r} does not suit this key")
    try:
        return jws.serialize_compact(protected, payload, key, registry=_REGISTRIES[key.key_type])
    except JoseError as exc:
        raise JoseFailure(f"signing failed: {exc}") from exc


def verify_compact(token: str, key: Key) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS with one key; returns (protected header, payload bytes).

    The header's ``alg`` must be one this key type allows (see module docstring).
    """
    try:
        obj = jws.deserialize_compact(token, key, registry=_REGISTRIES[key.key_type])
    except (UnsupportedAlgorithmError, MissingAlgorithmError) as exc:
        raise JoseFailure("JWS alg missing or not accepted for this key", "alg") from exc
    except JoseError as exc:
        kind = "signature" if exc.error == "bad_signature" else "format"
        raise JoseFailure(f"JWS rejected: {exc.error}", kind) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise JoseFailure("malformed JWS") from exc
    return obj.headers(), obj.payload
