"""Thin JOSE layer over joserfc: key import with a cache, compact JWS sign/verify, base64url.

Every JWS/JWT in the identity package goes through here, so algorithm policy lives in one place:
EdDSA (and its fully specified name Ed25519) for OKP Ed25519 keys, ES256 for EC P-256 keys.
Nothing else is ever accepted; ``alg: none`` in particular can never verify.
"""

from __future__ import annotations

import binascii
import functools
import json
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jws
from joserfc._rfc7515.model import JWSAlgModel  # the documented base for custom algorithms
from joserfc.errors import JoseError, MissingAlgorithmError, UnsupportedAlgorithmError
from joserfc.jwk import ECKey, OKPKey, import_key
from joserfc.jws import JWSRegistry

from identity import ed25519

__all__ = [
    "JoseFailure",
    "Key",
    "algs_for",
    "b64u_decode",
    "b64u_encode",
    "default_alg",
    "generate_ec_p256",
    "generate_ed25519",
    "jwk_from_public_key",
    "load_key",
    "public_jwk",
    "sign_compact",
    "verify_compact",
]

Key = ECKey | OKPKey

_EDDSA_ALGS: Final = ("EdDSA", "Ed25519")
_ES256_ALGS: Final = ("ES256",)
_B64U_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64U_TO_STD: Final = bytes.maketrans(b"-_", b"+/")
_STD_TO_B64U: Final = bytes.maketrans(b"+/", b"-_")
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


class _FastEd25519(JWSAlgModel):
    """EdDSA over Ed25519: signed with libsodium (PyNaCl), verified by :mod:`identity.ed25519`;
    the same JWS, over twice as cheap to verify as the OpenSSL binding on the machines measured.
    Ed448 keys are not accepted anywhere here."""

    key_type = "OKP"
    description = "EdDSA (Ed25519) via libsodium and ed25519-zebra"
    security_warning = None

    def __init__(self, name: str) -> None:
        self.name = name

    def sign(self, msg: bytes, key: OKPKey) -> bytes:
        return bytes(_nacl_signer(key).sign(msg).signature)

    def verify(self, msg: bytes, sig: bytes, key: OKPKey) -> bool:
        # get_op_key enforces the JWK's use/key_ops like joserfc's own algorithms do; any key
        # that is not Ed25519 (Ed448, X25519) fails here as a signature that does not verify
        public = key.get_op_key("verify")
        if not isinstance(public, Ed25519PublicKey):
            return False
        return ed25519.verify(sig, msg, public.public_bytes_raw())


# Deriving a libsodium signing key costs a scalar multiplication; signers are long-lived, so they
# are kept per joserfc key object (unhashable: indexed by id() with a weak reference against reuse).
_SIGNERS: dict[int, tuple[weakref.ref[OKPKey], nacl.signing.SigningKey]] = {}
_SIGNERS_LOCK = threading.Lock()


def _nacl_signer(key: OKPKey) -> nacl.signing.SigningKey:
    hit = _SIGNERS.get(id(key))
    if hit is not None and hit[0]() is key:
        return hit[1]
    private = key.get_op_key("sign")
    if not isinstance(private, Ed25519PrivateKey):
        raise JoseFailure("signing needs an Ed25519 private key")
    signer = nacl.signing.SigningKey(private.private_bytes_raw())
    with _SIGNERS_LOCK:
        if len(_SIGNERS) >= _CACHE_LIMIT:
            _SIGNERS.clear()
        _SIGNERS[id(key)] = (weakref.ref(key), signer)
    return signer


class _Registry(JWSRegistry):
    algorithms: dict[str, JWSAlgModel] = {  # noqa: RUF012 - class-level like the base registry
        **JWSRegistry.algorithms,
        "EdDSA": _FastEd25519("EdDSA"),
        "Ed25519": _FastEd25519("Ed25519"),
    }
    recommended: list[str] = list(JWSRegistry.recommended)  # noqa: RUF012


_REGISTRIES: Final = {
    "OKP": _Registry(algorithms=_EDDSA_ALGS),
    "EC": _Registry(algorithms=_ES256_ALGS),
}


@functools.lru_cache(maxsize=8)
def _registry(kty: str, header_limit: int | None) -> _Registry:
    """The registry for a key type; ``header_limit`` raises joserfc's 512-byte protected-header cap
    (an ``x5c`` chain alone is a few kilobytes)."""
    if header_limit is None:
        return _REGISTRIES[kty]
    registry = _Registry(algorithms=_EDDSA_ALGS if kty == "OKP" else _ES256_ALGS)
    registry.max_header_length = header_limit
    return registry


def b64u_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_STD_TO_B64U).rstrip(b"=").decode("ascii")


def b64u_decode(text: str | bytes) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2); ``text`` may be ASCII bytes."""
    if isinstance(text, str):
        if not text.isascii():
            raise JoseFailure("invalid base64url")
        data = text.encode("ascii")
    elif isinstance(text, bytes):
        data = text
    else:
        raise JoseFailure("invalid base64url")
    # delete every alphabet byte: anything left ('=', '+', '/', whitespace, ...) is not base64url
    if len(data) % 4 == 1 or data.translate(None, _B64U_ALPHABET):
        raise JoseFailure("invalid base64url")
    try:
        return binascii.a2b_base64(data.translate(_B64U_TO_STD) + b"=" * (-len(data) % 4), strict_mode=True)
    except binascii.Error as exc:
        raise JoseFailure("invalid base64url") from exc


class _KeyCache:
    """Parsed keys keyed by their canonical JWK JSON; parsing a JWK costs more than verifying."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: OrderedDict[object, Key] = OrderedDict()
        self._lock = threading.Lock()
        # the last key returned, with a copy of its JWK: a verifier usually checks many tokens of
        # one issuer in a row, and comparing two small dicts is cheaper than building the cache key
        self._last: tuple[dict[str, Any], Key] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def get(self, jwk: Mapping[str, Any]) -> Key:
        last = self._last
        if last is not None and last[0] == jwk:
            return last[1]
        key = self._lookup(jwk)
        self._last = (dict(jwk), key)
        return key

    def _lookup(self, jwk: Mapping[str, Any]) -> Key:
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


def _coordinate(jwk: Mapping[str, Any], name: str) -> bytes:
    """A 32-byte public key member: full length (RFC 7518 6.2.1.2, RFC 8037 2), canonical base64url."""
    text = jwk.get(name)
    if not isinstance(text, str) or len(text) != 43:
        raise JoseFailure(f"invalid JWK: '{name}' must be 32 bytes of base64url")
    raw = b64u_decode(text)
    if b64u_encode(raw) != text:  # non-zero trailing bits: another spelling of the same bytes
        raise JoseFailure(f"invalid JWK: '{name}' is not canonical base64url")
    return raw


def _import(jwk: Mapping[str, Any]) -> Key:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not ((kty == "OKP" and crv == "Ed25519") or (kty == "EC" and crv == "P-256")):
        raise JoseFailure(f"unsupported key type {kty!r}/{crv!r}: only OKP Ed25519 and EC P-256")
    try:
        if "d" in jwk:
            key = import_key(dict(jwk))
        elif kty == "OKP":
            # joserfc's dict import re-validates the JWK and goes through Python integers; building
            # the public key from its raw bytes is several times cheaper, and the key object below
            # still validates every JWK member (use, key_ops, alg, ...) as an import would.
            key = OKPKey(Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x")), dict(jwk))
        else:
            point = b"\x04" + _coordinate(jwk, "x") + _coordinate(jwk, "y")
            key = ECKey(EllipticCurvePublicKey.from_encoded_point(SECP256R1(), point), dict(jwk))
    except (JoseError, ValueError, TypeError) as exc:  # includes "point not on the curve"
        if isinstance(exc, JoseFailure):
            raise
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


def jwk_from_public_key(public_key: object) -> dict[str, str]:
    """The public JWK of a ``cryptography`` Ed25519 or P-256 public key (e.g. a certificate's)."""
    if isinstance(public_key, Ed25519PublicKey):
        return {"kty": "OKP", "crv": "Ed25519", "x": b64u_encode(public_key.public_bytes_raw())}
    if isinstance(public_key, EllipticCurvePublicKey) and isinstance(public_key.curve, SECP256R1):
        numbers = public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u_encode(numbers.x.to_bytes(32, "big")),
            "y": b64u_encode(numbers.y.to_bytes(32, "big")),
        }
    raise JoseFailure("unsupported key type: only Ed25519 and P-256 public keys")


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


def verify_compact(token: str, key: Key, *, header_limit: int | None = None) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS with one key; returns (protected header, payload bytes).

    The header's ``alg`` must be one this key type allows (see module docstring). The encoded
    protected header may be at most 512 bytes unless ``header_limit`` allows more.
    """
    try:
        obj = jws.deserialize_compact(token, key, registry=_registry(key.key_type, header_limit))
    except (UnsupportedAlgorithmError, MissingAlgorithmError) as exc:
        raise JoseFailure("JWS alg missing or not accepted for this key", "alg") from exc
    except JoseError as exc:
        kind = "signature" if exc.error == "bad_signature" else "format"
        raise JoseFailure(f"JWS rejected: {exc.error}", kind) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise JoseFailure("malformed JWS") from exc
    return obj.headers(), obj.payload
