"""IETF Token Status List (draft-ietf-oauth-status-list), JSON/JWT flavour.

* ``encode(statuses, bits)`` / ``decode(lst, bits)``: each status takes ``bits`` (1, 2, 4 or 8) bits,
  packed least-significant-bit first within each byte, the byte string zlib-compressed (DEFLATE
  in the zlib format) and base64url-encoded without padding.
* A Status List Token is a JWT with ``typ: statuslist+jwt`` and claims ``sub`` (the list's URI),
  ``iat``, optional ``exp``, ``ttl`` (seconds a relying party may cache it) and
  ``status_list: {"bits": n, "lst": "..."}``.
* A referenced token (our SD-JWT VC) carries ``"status": {"status_list": {"idx": i, "uri": "..."}}``.
* :class:`StatusChecker` resolves such a claim to a status, caching each list while it is fresh.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from identity import jose

__all__ = [
    "INVALID",
    "SUSPENDED",
    "TOKEN_TYP",
    "VALID",
    "StatusChecker",
    "StatusList",
    "StatusListError",
    "StatusListToken",
    "decode",
    "encode",
    "make_token",
    "parse_status_claim",
    "status_claim",
    "verify_token",
]

VALID: Final = 0
INVALID: Final = 1
SUSPENDED: Final = 2
TOKEN_TYP: Final = "statuslist+jwt"
BITS_ALLOWED: Final = (1, 2, 4, 8)
MAX_LIST_BYTES: Final = 1 << 24  # 16 MiB decompressed: ~134M one-bit entries
MAX_LST_CHARS: Final = 1 << 24
DEFAULT_TTL_S: Final = 300
MAX_TTL_S: Final = 86_400


class StatusListError(ValueError):
    """Malformed list, bad token, unknown index or an unreachable list."""


def _check_bits(bits: int) -> None:
    if bits not in BITS_ALLOWED:
        raise StatusListError(f"bits must be one of {BITS_ALLOWED}, got {bits!r}")


def pack(statuses: Iterable[int], bits: int) -> bytes:
    """Pack statuses LSB-first: entry ``i`` sits at bit offset ``(i * bits) % 8`` of byte ``i * bits // 8``."""
    _check_bits(bits)
    values = list(statuses)
    limit = (1 << bits) - 1
    if any(type(v) is not int for v in values) or (values and (min(values) < 0 or max(values) > limit)):
        raise StatusListError(f"every status must be an integer that fits in {bits} bits")
    if bits == 8:
        return bytes(values)
    per_byte = 8 // bits
    values.extend([0] * (-len(values) % per_byte))
    return bytes(map(_PACK[bits].__getitem__, zip(*[iter(values)] * per_byte, strict=True)))


def _unpack_table(bits: int) -> tuple[tuple[int, ...], ...]:
    mask = (1 << bits) - 1
    return tuple(tuple((byte >> (j * bits)) & mask for j in range(8 // bits)) for byte in range(256))


_UNPACK: Final = {bits: _unpack_table(bits) for bits in (1, 2, 4)}
_PACK: Final = {bits: {entry: byte for byte, entry in enumerate(table)} for bits, table in _UNPACK.items()}


def unpack(raw: bytes, bits: int) -> list[int]:
    _check_bits(bits)
    if bits == 8:
        return list(raw)
    return list(itertools.chain.from_iterable(map(_UNPACK[bits].__getitem__, raw)))


def compress(raw: bytes) -> str:
    return jose.b64u_encode(zlib.compress(raw, 9))


def decompress(lst: str) -> bytes:
    if not isinstance(lst, str) or len(lst) > MAX_LST_CHARS:
        raise StatusListError("lst must be a base64url string")
    try:
        compressed = jose.b64u_decode(lst)
    except jose.JoseFailure as exc:
        raise StatusListError("lst is not base64url") from exc
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, MAX_LIST_BYTES)
    except zlib.error as exc:
        raise StatusListError("lst is not zlib data") from exc
    if inflater.unconsumed_tail:
        raise StatusListError("status list too large")
    if not inflater.eof:
        raise StatusListError("lst is truncated")
    return raw


def encode(statuses: Sequence[int], bits: int) -> str:
    """``lst`` for a sequence of statuses."""
    return compress(pack(statuses, bits))


def decode(lst: str, bits: int) -> list[int]:
    """Statuses of an ``lst``; the length is a whole number of bytes (trailing entries are 0)."""
    _check_bits(bits)
    return unpack(decompress(lst), bits)


class StatusList:
    """A mutable status list of fixed size (a multiple of 8 entries keeps indices unlinkable)."""

    __slots__ = ("_raw", "bits", "size")

    def __init__(self, size: int, bits: int = 1, raw: bytes | None = None) -> None:
        _check_bits(bits)
        if size <= 0 or size * bits > MAX_LIST_BYTES * 8:
            raise StatusListError("status list size out of range")
        self.bits = bits
        self.size = size
        nbytes = (size * bits + 7) // 8
        if raw is None:
            raw = bytes(nbytes)
        if len(raw) < nbytes:
            raise StatusListError("status list shorter than its size")
        self._raw = bytearray(raw[:nbytes])

    @classmethod
    def from_lst(cls, lst: str, bits: int) -> StatusList:
        _check_bits(bits)
        raw = decompress(lst)
        if not raw:
            raise StatusListError("empty status list")
        return cls(len(raw) * 8 // bits, bits, raw)

    def _locate(self, idx: int) -> tuple[int, int]:
        if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < self.size:
            raise StatusListError("status index out of range")
        offset = idx * self.bits
        return offset // 8, offset % 8

    def get(self, idx: int) -> int:
        byte, shift = self._locate(idx)
        return (self._raw[byte] >> shift) & ((1 << self.bits) - 1)

    def set(self, idx: int, status: int) -> None:
        byte, shift = self._locate(idx)
        mask = (1 << self.bits) - 1
        if not isinstance(status, int) or not 0 <= status <= mask:
            raise StatusListError(f"status does not fit in {self.bits} bits")
        self._raw[byte] = (self._raw[byte] & ~(mask << shift) & 0xFF) | (status << shift)

    def to_bytes(self) -> bytes:
        return bytes(self._raw)

    def to_lst(self) -> str:
        return compress(bytes(self._raw))

    def as_claim(self) -> dict[str, Any]:
        return {"bits": self.bits, "lst": self.to_lst()}


# --------------------------------------------------------------------------------------------
# referenced token claim


def status_claim(idx: int, uri: str) -> dict[str, Any]:
    """The ``status`` claim a referenced token carries."""
    if idx < 0:
        raise StatusListError("status index must be non-negative")
    return {"status_list": {"idx": idx, "uri": uri}}


def parse_status_claim(claim: Any) -> tuple[int, str]:
    if not isinstance(claim, Mapping):
        raise StatusListError("status claim must be an object")
    ref = claim.get("status_list")
    if not isinstance(ref, Mapping):
        raise StatusListError("status claim has no status_list reference")
    idx, uri = ref.get("idx"), ref.get("uri")
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        raise StatusListError("status_list.idx must be a non-negative integer")
    if not isinstance(uri, str) or not uri:
        raise StatusListError("status_list.uri must be a string")
    return idx, uri


# --------------------------------------------------------------------------------------------
# Status List Token (JWT)


@dataclass(frozen=True, slots=True)
class StatusListToken:
    uri: str
    iat: int
    exp: int | None
    ttl_s: int | None
    status_list: StatusList
    issuer: str | None = None


def make_token(
    status_list: StatusList,
    *,
    uri: str,
    issuer_key: Mapping[str, Any],
    iat: int | None = None,
    exp: int | None = None,
    ttl_s: int | None = DEFAULT_TTL_S,
    issuer: str | None = None,
    kid: str | None = None,
) -> str:
    """Sign a Status List Token (``typ: statuslist+jwt``) with the issuer's private JWK."""
    now = int(time.time()) if iat is None else iat
    payload: dict[str, Any] = {"sub": uri, "iat": now, "status_list": status_list.as_claim()}
    if exp is not None:
        payload["exp"] = exp
    if ttl_s is not None:
        payload["ttl"] = ttl_s
    if issuer is not None:
        payload["iss"] = issuer
    header: dict[str, Any] = {"typ": TOKEN_TYP}
    if kid is not None:
        header["kid"] = kid
    try:
        return jose.sign_compact(header, json.dumps(payload, separators=(",", ":")).encode(), issuer_key)
    except jose.JoseFailure as exc:
        raise StatusListError(f"cannot sign status list: {exc}") from exc


def verify_token(
    token: str, *, issuer_jwk: Mapping[str, Any], expected_uri: str, now: int | None = None
) -> StatusListToken:
    """Verify signature, ``typ``, ``sub`` (must be the URI it was fetched from) and ``exp``."""
    when = int(time.time()) if now is None else now
    try:
        key = jose.load_key(issuer_jwk)
        header, payload_bytes = jose.verify_compact(token, key)
    except jose.JoseFailure as exc:
        raise StatusListError("status list token signature invalid") from exc
    if header.get("typ") != TOKEN_TYP:
        raise StatusListError("status list token has the wrong typ")
    try:
        payload = json.loads(payload_bytes)
    except ValueError as exc:
        raise StatusListError("status list token payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise StatusListError("status list token payload must be an object")
    if payload.get("sub") != expected_uri:
        raise StatusListError("status list token sub does not match its URI")
    iat, exp, ttl = payload.get("iat"), payload.get("exp"), payload.get("ttl")
    if not isinstance(iat, int) or iat > when + 60:
        raise StatusListError("status list token iat missing or in the future")
    if exp is not None and (not isinstance(exp, int) or exp <= when):
        raise StatusListError("status list token expired")
    if ttl is not None and (not isinstance(ttl, int) or ttl < 0):
        raise StatusListError("status list token ttl must be a non-negative integer")
    claim = payload.get("status_list")
    if not isinstance(claim, dict):
        raise StatusListError("status list token has no status_list")
    bits, lst_text = claim.get("bits"), claim.get("lst")
    if not isinstance(bits, int) or not isinstance(lst_text, str):
        raise StatusListError("status_list needs integer bits and a string lst")
    lst = StatusList.from_lst(lst_text, bits)
    iss = payload.get("iss")
    return StatusListToken(expected_uri, iat, exp, ttl, lst, iss if isinstance(iss, str) else None)


# --------------------------------------------------------------------------------------------
# relying-party checker


@dataclass(slots=True)
class _Cached:
    token: StatusListToken
    fresh_until: int


class StatusChecker:
    """Resolve ``status`` claims; each list is cached until ``min(iat + ttl, exp)`` (capped).

    ``fetch(uri)`` returns the Status List Token (the HTTP client is the caller's business);
    ``issuer_jwk_for(uri)`` returns the key that must have signed the list at that URI.
    ``clock`` returns Unix seconds.
    """

    def __init__(
        self,
        fetch: Callable[[str], str],
        issuer_jwk_for: Callable[[str], Mapping[str, Any]],
        *,
        clock: Callable[[], int] | None = None,
        default_ttl_s: int = DEFAULT_TTL_S,
        max_ttl_s: int = MAX_TTL_S,
        authoritative: Callable[[str], bool] | None = None,
    ) -> None:
        self._fetch = fetch
        self._key_for = issuer_jwk_for
        self._clock = clock or (lambda: int(time.time()))
        self._default_ttl_s = default_ttl_s
        self._max_ttl_s = max_ttl_s
        # Lists the caller serves itself (an in-process issuer) are always read fresh, not cached.
        self._authoritative = authoritative
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def _list(self, uri: str) -> StatusListToken:
        now = self._clock()
        local = self._authoritative is not None and self._authoritative(uri)
        with self._lock:
            hit = None if local else self._cache.get(uri)
        if hit is not None and now < hit.fresh_until:
            return hit.token
        try:
            token_text = self._fetch(uri)
        except StatusListError:
            raise
        except Exception as exc:  # the transport's own errors become one error type here
            raise StatusListError(f"status list unreachable: {type(exc).__name__}") from exc
        self.fetches += 1
        token = verify_token(token_text, issuer_jwk=self._key_for(uri), expected_uri=uri, now=now)
        ttl = self._default_ttl_s if token.ttl_s is None else token.ttl_s
        fresh_until = now + min(ttl, self._max_ttl_s)
        if token.exp is not None:
            fresh_until = min(fresh_until, token.exp)
        if not local:
            with self._lock:
                self._cache[uri] = _Cached(token, fresh_until)
        return token

    def status(self, claim: Any) -> int:
        """The status of a referenced token's ``status`` claim (0 valid, 1 invalid, 2 suspended)."""
        idx, uri = parse_status_claim(claim)
        return self._list(uri).status_list.get(idx)

    def invalidate(self, uri: str | None = None) -> None:
        with self._lock:
            if uri is None:
                self._cache.clear()
            else:
                self._cache.pop(uri, None)
