"""did:key identifiers for Ed25519 and BLS12-381 public keys (W3C CCG did:key method).

A did:key is ``did:key:`` + multibase base58btc (prefix ``z``) of the multicodec varint code of the
key type followed by the raw public key bytes. Supported codes:

============================  ======  ============
key type                      code    key length
============================  ======  ============
``ed25519-pub``               0xed    32
``bls12_381-g2-pub``          0xeb    96 (compressed G2)
``bls12_381-g1-pub``          0xea    48 (compressed G1)
``x25519-pub``                0xec    32
============================  ======  ============
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DidKey",
    "DidKeyError",
    "KeyType",
    "b58decode",
    "b58encode",
    "decode",
    "encode",
    "from_jwk",
    "to_jwk",
    "verification_method_id",
]

KeyType = Literal["Ed25519", "X25519", "Bls12381G1", "Bls12381G2"]

_CODES: Final[dict[KeyType, int]] = {
    "Ed25519": 0xED,
    "X25519": 0xEC,
    "Bls12381G1": 0xEA,
    "Bls12381G2": 0xEB,
}
_LENGTHS: Final[dict[KeyType, int]] = {"Ed25519": 32, "X25519": 32, "Bls12381G1": 48, "Bls12381G2": 96}
_BY_CODE: Final[dict[int, KeyType]] = {code: kt for kt, code in _CODES.items()}

_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(_ALPHABET)}
PREFIX: Final = "did:key:"
MAX_DID_LENGTH: Final = 512


class DidKeyError(ValueError):
    """A did:key string is malformed or names an unsupported key type."""


@dataclass(frozen=True, slots=True)
class DidKey:
    key_type: KeyType
    public_key: bytes

    @property
    def did(self) -> str:
        return encode(self.key_type, self.public_key)


def b58encode(data: bytes) -> str:
    """Bitcoin base58 (the alphabet multibase ``z`` uses)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out: list[str] = []
    while n:
        n, rem = divmod(n, 58)
        out.append(_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        digit = _INDEX.get(ch)
        if digit is None:
            raise DidKeyError(f"invalid base58 character {ch!r}")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int]:
    value = shift = 0
    for i, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise DidKeyError("truncated multicodec varint")


def encode(key_type: KeyType, public_key: bytes) -> str:
    """did:key for a raw public key of the given type."""
    if key_type not in _CODES:
        raise DidKeyError(f"unsupported key type {key_type!r}")
    if len(public_key) != _LENGTHS[key_type]:
        raise DidKeyError(f"{key_type} public key must be {_LENGTHS[key_type]} bytes, got {len(public_key)}")
    return PREFIX + "z" + b58encode(_varint(_CODES[key_type]) + bytes(public_key))


def decode(did: str) -> DidKey:
    """Parse a did:key (a ``#fragment`` is ignored) into its key type and raw public key."""
    if len(did) > MAX_DID_LENGTH:
        raise DidKeyError("did:key too long")
    did = did.split("#", 1)[0]
    if not did.startswith(PREFIX):
        raise DidKeyError("not a did:key")
    multibase = did[len(PREFIX) :]
    if not multibase.startswith("z") or len(multibase) < 2:
        raise DidKeyError("did:key must use multibase base58btc (prefix 'z')")
    raw = b58decode(multibase[1:])
    code, used = _read_varint(raw)
    key_type = _BY_CODE.get(code)
    if key_type is None:
        raise DidKeyError(f"unsupported multicodec 0x{code:x}")
    key = raw[used:]
    if len(key) != _LENGTHS[key_type]:
        raise DidKeyError(f"{key_type} key must be {_LENGTHS[key_type]} bytes, got {len(key)}")
    return DidKey(key_type, key)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def to_jwk(did: str) -> dict[str, str]:
    """Public JWK (RFC 8037 OKP) of an Ed25519 or X25519 did:key."""
    key = decode(did)
    if key.key_type not in ("Ed25519", "X25519"):
        raise DidKeyError(f"{key.key_type} keys have no OKP JWK form")
    return {"kty": "OKP", "crv": key.key_type, "x": _b64u(key.public_key)}


def from_jwk(jwk: Mapping[str, object]) -> str:
    """did:key of a public OKP JWK (Ed25519 or X25519)."""
    crv, x = jwk.get("crv"), jwk.get("x")
    if jwk.get("kty") != "OKP" or crv not in ("Ed25519", "X25519") or not isinstance(x, str):
        raise DidKeyError("only OKP Ed25519/X25519 JWKs map onto did:key here")
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except ValueError as exc:
        raise DidKeyError("JWK x is not base64url") from exc
    return encode("Ed25519" if crv == "Ed25519" else "X25519", raw)


def verification_method_id(did: str) -> str:
    """The key's verification method id inside its DID document: ``did:key:z...#z...``."""
    base = did.split("#", 1)[0]
    return f"{base}#{base[len(PREFIX) :]}"
