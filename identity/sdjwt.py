"""SD-JWT (RFC 9901) and SD-JWT VC (draft-ietf-oauth-sd-jwt-vc): issue, present, verify.

Compact serialization only: ``<issuer-signed JWT>~<disclosure>~...~<KB-JWT or empty>``.

* :func:`issue` builds an SD-JWT from claims where :class:`SD` marks what is selectively disclosable
  (a dict key wrapped in ``SD`` makes that property disclosable; an ``SD`` list element makes that
  array element disclosable; nesting works at any depth).
* :func:`parse` is the holder's view of an SD-JWT it holds (every disclosure with its claim path).
* :func:`present` picks disclosures by claim path and appends a Key Binding JWT.
* :func:`verify_presentation` is the strict verifier of RFC 9901 section 7 for SD-JWT VCs.

Every failure raises :class:`SDJWTError` with a short message that never includes disclosure
contents or token material.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from identity import jose

__all__ = [
    "DEFAULT_TYP",
    "KB_TYP",
    "SD",
    "ClaimPath",
    "Disclosure",
    "HeldSDJWT",
    "SDJWTError",
    "Verified",
    "issue",
    "parse",
    "present",
    "select_disclosures",
    "verify",
    "verify_presentation",
]

DEFAULT_TYP: Final = "dc+sd-jwt"
VC_TYPS: Final = frozenset({"dc+sd-jwt", "vc+sd-jwt"})
KB_TYP: Final = "kb+jwt"
HASH_ALG: Final = "sha-256"
RESERVED_NAMES: Final = frozenset({"_sd", "..."})
# Claims the SD-JWT VC draft forbids making selectively disclosable.
VC_NEVER_DISCLOSABLE: Final = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})

MAX_PRESENTATION_CHARS: Final = 1 << 20
MAX_DISCLOSURES: Final = 1024
MAX_DEPTH: Final = 32
KB_MAX_AGE_S: Final = 300
CLOCK_SKEW_S: Final = 60
SALT_BYTES: Final = 16

ClaimPath = tuple[str | int | None, ...]
"""A claim path as in DCQL: object keys, array indices, ``None`` for every element of an array."""


class SDJWTError(Exception):
    """Any problem with an SD-JWT, its disclosures or its Key Binding JWT."""


@dataclass(frozen=True, slots=True)
class SD:
    """Marks a dict key (or a list element) as selectively disclosable at issuance."""

    value: Any

    def __hash__(self) -> int:
        return hash(("SD", self.value))


@dataclass(frozen=True, slots=True)
class Disclosure:
    raw: str
    digest: str
    salt: str
    name: str | None  # None for an array element
    value: Any
    path: ClaimPath = ()


@dataclass(frozen=True, slots=True)
class HeldSDJWT:
    """A holder's parsed SD-JWT: the issuer-signed JWT and every disclosure it holds."""

    jwt: str
    header: dict[str, Any]
    payload: dict[str, Any]
    disclosures: tuple[Disclosure, ...]
    claims: dict[str, Any]  # everything disclosed

    @property
    def serialized(self) -> str:
        return "~".join([self.jwt, *(d.raw for d in self.disclosures), ""])


@dataclass(frozen=True, slots=True)
class Verified:
    claims: dict[str, Any]
    header: dict[str, Any]
    key_binding: dict[str, Any] | None = None
    disclosed: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------------------------
# helpers


def _digest(disclosure: str) -> str:
    return jose.b64u_encode(hashlib.sha256(disclosure.encode("ascii")).digest())


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_json_decode: Final = json.JSONDecoder().decode  # json.loads without its per-call argument handling


def _loads(data: bytes | str, what: str) -> Any:
    try:
        return _json_decode(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SDJWTError(f"{what} is not valid JSON") from exc


def _decode_segment(segment: str, what: str) -> Any:
    try:
        raw = jose.b64u_decode(segment)
    except jose.JoseFailure as exc:
        raise SDJWTError(f"{what} is not base64url") from exc
    return _loads(raw, what)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# issuance


class _Builder:
    def __init__(self, decoys: int, salt: Callable[[], str]) -> None:
        self.decoys = decoys
        self.salt = salt
        self.disclosures: list[str] = []

    def _disclose(self, parts: list[Any]) -> str:
        raw = jose.b64u_encode(_json_bytes(parts))
        self.disclosures.append(raw)
        return _digest(raw)

    def _decoy(self) -> str:
        return jose.b64u_encode(hashlib.sha256(secrets.token_bytes(SALT_BYTES)).digest())

    def build(self, node: Any, depth: int) -> Any:
        """The payload form of ``node``, a value ``depth`` levels below the payload (level 0)."""
        if isinstance(node, SD):
            raise SDJWTError("SD marks a dict key or a list element, not a value")
        if isinstance(node, Mapping | list | tuple) and depth > MAX_DEPTH:
            raise SDJWTError("claims nest too deeply")  # the verifier's limit, counted alike
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            digests: list[str] = []
            names: set[str] = set()  # plain and disclosable alike: a verifier refuses a name twice
            for key, value in node.items():
                sd = isinstance(key, SD)
                name = key.value if isinstance(key, SD) else key
                if not isinstance(name, str):
                    raise SDJWTError("claim names must be strings")
                if name in RESERVED_NAMES or name == "_sd_alg":
                    raise SDJWTError(f"claim name {name!r} is reserved")
                if name in names:
                    raise SDJWTError(f"claim {name!r} given twice")
                names.add(name)
                built = self.build(value, depth + 1)
                if sd:
                    digests.append(self._disclose([self.salt(), name, built]))
                else:
                    out[name] = built
            if digests:
                digests.extend(self._decoy() for _ in range(self.decoys))
                out["_sd"] = sorted(digests)
            return out
        if isinstance(node, list | tuple):
            items: list[Any] = []
            for element in node:
                if isinstance(element, SD):
                    items.append({"...": self._disclose([self.salt(), self.build(element.value, depth + 1)])})
                else:
                    items.append(self.build(element, depth + 1))
            return items
        if node is None or isinstance(node, str | bool | int | float):
            return node
        raise SDJWTError(f"claim value of type {type(node).__name__} is not JSON")


def _random_salt() -> str:
    return jose.b64u_encode(secrets.token_bytes(SALT_BYTES))


def issue(
    claims: Mapping[Any, Any],
    *,
    issuer_key: Mapping[str, Any],
    holder_jwk: Mapping[str, Any] | None = None,
    typ: str = DEFAULT_TYP,
    kid: str | None = None,
    decoys: int = 0,
    salt: Callable[[], str] = _random_salt,
    extra_header: Mapping[str, Any] | None = None,
) -> str:
    """Issue an SD-JWT (``~``-terminated, no KB-JWT). ``issuer_key`` is a private JWK.

    With an SD-JWT VC ``typ`` (``dc+sd-jwt``/``vc+sd-jwt``) a string ``vct`` is required and the
    registered claims ``iss nbf exp cnf vct status`` may not be selectively disclosable.
    ``holder_jwk`` (public) becomes ``cnf.jwk``.
    """
    if not 0 <= decoys <= 16:
        raise SDJWTError("decoys per object must be 0..16")
    if typ in VC_TYPS:
        if not isinstance(claims.get("vct"), str):
            raise SDJWTError("an SD-JWT VC needs a string 'vct' claim")
        for key in claims:
            if isinstance(key, SD) and key.value in VC_NEVER_DISCLOSABLE:
                raise SDJWTError(f"claim {key.value!r} must not be selectively disclosable")
    if "cnf" in claims and holder_jwk is not None:
        raise SDJWTError("give either a cnf claim or holder_jwk")
    builder = _Builder(decoys, salt)
    payload = builder.build(claims, 0)
    payload["_sd_alg"] = HASH_ALG
    if holder_jwk is not None:
        try:
            payload["cnf"] = {"jwk": jose.public_jwk(holder_jwk)}
        except jose.JoseFailure as exc:
            raise SDJWTError(f"holder key: {exc}") from exc
    header: dict[str, Any] = {"typ": typ}
    if kid is not None:
        header["kid"] = kid
    if extra_header:
        header.update({k: v for k, v in extra_header.items() if k not in ("typ", "alg")})
    try:
        jwt = jose.sign_compact(header, _json_bytes(payload), issuer_key)
    except jose.JoseFailure as exc:
        raise SDJWTError(f"issuer key: {exc}") from exc
    return "~".join([jwt, *builder.disclosures, ""])


# --------------------------------------------------------------------------------------------
# parsing and disclosure processing (shared by holder and verifier)


@dataclass(slots=True)
class _Split:
    jwt: str
    disclosures: list[str]
    kb_jwt: str
    signed_part: str  # everything up to and including the last '~' before the KB-JWT


def _split(serialized: str) -> _Split:
    if not isinstance(serialized, str):
        raise SDJWTError("SD-JWT must be a string")
    if len(serialized) > MAX_PRESENTATION_CHARS:
        raise SDJWTError("SD-JWT too large")
    if not serialized.isascii():
        raise SDJWTError("SD-JWT must be ASCII")
    parts = serialized.split("~")
    if len(parts) < 2:
        raise SDJWTError("not an SD-JWT: no '~' separator")
    jwt, *disclosures, kb_jwt = parts
    if jwt.count(".") != 2:
        raise SDJWTError("issuer-signed JWT is not a compact JWS")
    if len(disclosures) > MAX_DISCLOSURES:
        raise SDJWTError("too many disclosures")
    if "" in disclosures:
        raise SDJWTError("empty disclosure")
    if kb_jwt and kb_jwt.count(".") != 2:
        raise SDJWTError("Key Binding JWT is not a compact JWS")
    signed_part = serialized[: len(serialized) - len(kb_jwt)]
    return _Split(jwt, disclosures, kb_jwt, signed_part)


# A decoded disclosure: (raw, salt, claim name or None for an array element, value).
_Decoded = tuple[str, str, str | None, Any]


def _decode_disclosures(raws: Sequence[str]) -> dict[str, _Decoded]:
    """Digest -> decoded disclosure; each disclosure is hashed and decoded exactly once."""
    out: dict[str, _Decoded] = {}
    sha256 = hashlib.sha256
    for raw in raws:
        data = raw.encode("ascii")  # _split has checked the whole token is ASCII
        digest = jose.b64u_encode(sha256(data).digest())
        if digest in out:
            raise SDJWTError("the same disclosure appears twice")
        try:
            parts = _json_decode(jose.b64u_decode(data).decode("utf-8"))
        except jose.JoseFailure as exc:
            raise SDJWTError("disclosure is not base64url") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise SDJWTError("disclosure is not valid JSON") from exc
        if type(parts) is not list or not 2 <= len(parts) <= 3 or not isinstance(parts[0], str):
            raise SDJWTError("disclosure must be a JSON array [salt, (name,) value]")
        if len(parts) == 3:
            if not isinstance(parts[1], str):
                raise SDJWTError("disclosure claim name must be a string")
            out[digest] = (raw, parts[0], parts[1], parts[2])
        else:
            out[digest] = (raw, parts[0], None, parts[1])
    return out


class _Processor:
    """RFC 9901 section 7.1 step 3: replace digests by disclosed values, strictly.

    Input is decoded JSON, so containers are exactly ``dict`` and ``list``: exact type tests keep
    this walk cheap (it runs on every claim of every presentation).
    """

    __slots__ = ("disclosures", "seen", "used")

    def __init__(self, disclosures: dict[str, _Decoded]) -> None:
        self.disclosures = disclosures
        self.seen: set[str] = set()
        self.used: dict[str, ClaimPath] = {}

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The processed payload (level 0 of the nesting limit)."""
        return self._object(payload, (), 0)

    def _take(self, digest: Any) -> _Decoded | None:
        if type(digest) is not str:
            raise SDJWTError("digest must be a string")
        if digest in self.seen:
            raise SDJWTError("a digest appears more than once in the SD-JWT")
        self.seen.add(digest)
        return self.disclosures.get(digest)

    def _value(self, value: Any, path: ClaimPath, depth: int) -> Any:
        kind = type(value)
        if kind is dict:
            return self._object(value, path, depth)
        if kind is list:
            return self._array(value, path, depth)
        return value

    def _object(self, node: dict[str, Any], path: ClaimPath, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise SDJWTError("SD-JWT nests too deeply")
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "_sd":
                continue
            kind = type(value)
            if kind is dict or kind is list:
                value = self._value(value, (*path, key), depth + 1)
            out[key] = value
        digests = node.get("_sd")
        if digests is None:
            return out
        if type(digests) is not list:
            raise SDJWTError("_sd must be an array")
        for digest in digests:
            probe = self._take(digest)
            if probe is None:
                continue
            name = probe[2]
            if name is None:
                raise SDJWTError("an object digest refers to an array-element disclosure")
            if name in RESERVED_NAMES:
                raise SDJWTError(f"disclosure uses a reserved claim name {name!r}")
            if name in out or (name == "_sd_alg" and depth == 0):
                raise SDJWTError(f"disclosed claim {name!r} already exists in the object")
            claim_path = (*path, name)
            self.used[digest] = claim_path
            out[name] = self._value(probe[3], claim_path, depth + 1)
        return out

    def _array(self, node: list[Any], path: ClaimPath, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise SDJWTError("SD-JWT nests too deeply")
        items: list[Any] = []
        for element in node:
            if type(element) is dict and len(element) == 1 and "..." in element:
                probe = self._take(element["..."])
                if probe is not None:
                    if probe[2] is not None:
                        raise SDJWTError("an array element digest refers to an object-property disclosure")
                    claim_path = (*path, len(items))
                    self.used[element["..."]] = claim_path
                    items.append(self._value(probe[3], claim_path, depth + 1))
                continue
            items.append(self._value(element, (*path, len(items)), depth + 1))
        return items


def _process(payload: dict[str, Any], disclosures: dict[str, _Decoded]) -> tuple[dict[str, Any], _Processor]:
    sd_alg = payload.get("_sd_alg", HASH_ALG)
    if sd_alg != HASH_ALG:
        raise SDJWTError(f"unsupported _sd_alg {sd_alg!r}")
    proc = _Processor(disclosures)
    claims = proc.run(payload)
    claims.pop("_sd_alg", None)
    unused = len(disclosures) - len(proc.used)
    if unused:
        raise SDJWTError(f"{unused} disclosure(s) not referenced by any digest")
    return claims, proc


def _unverified_jwt(jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head_b64, payload_b64, _sig = jwt.split(".")
    header = _decode_segment(head_b64, "JWT header")
    payload = _decode_segment(payload_b64, "JWT payload")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise SDJWTError("JWT header and payload must be JSON objects")
    return header, payload


def peek_issuer_jwt(sd_jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The issuer-signed JWT's header and payload, NOT verified: only to pick the key to verify with."""
    return _unverified_jwt(_split(sd_jwt).jwt)


# --------------------------------------------------------------------------------------------
# holder


def parse(sd_jwt: str, *, issuer_jwk: Mapping[str, Any] | None = None) -> HeldSDJWT:
    """Holder-side parse of an issued SD-JWT (a trailing KB-JWT is ignored).

    With ``issuer_jwk`` the issuer signature is checked too (wallets do so on receipt).
    """
    split = _split(sd_jwt)
    if issuer_jwk is not None:
        header, payload = _verify_issuer_jwt(split.jwt, issuer_jwk, accepted_typs=None)
    else:
        header, payload = _unverified_jwt(split.jwt)
    decoded = _decode_disclosures(split.disclosures)
    claims, proc = _process(payload, decoded)
    held = tuple(
        Disclosure(raw, digest, salt, name, value, proc.used[digest])
        for digest, (raw, salt, name, value) in decoded.items()
    )
    return HeldSDJWT(split.jwt, header, payload, held, claims)


def _path_matches(concrete: ClaimPath, pattern: Sequence[str | int | None]) -> bool:
    """Does ``concrete`` match ``pattern`` over their common prefix (None matches any index)?"""
    for got, want in zip(concrete, pattern, strict=False):
        if want is None:
            if not isinstance(got, int):
                return False
        elif got != want:
            return False
    return True


def select_disclosures(
    held: HeldSDJWT, paths: Iterable[Sequence[str | int | None]], *, include_nested: bool = True
) -> list[Disclosure]:
    """Disclosures needed to reveal each requested claim path.

    A disclosure is taken when its path leads to a requested path (it is an ancestor or the claim
    itself) or, with ``include_nested``, when it lies inside a requested claim.
    """
    wanted = [tuple(p) for p in paths]
    chosen: list[Disclosure] = []
    for disclosure in held.disclosures:
        p = disclosure.path
        for r in wanted:
            if (len(p) <= len(r) and _path_matches(p, r)) or (
                include_nested and len(p) > len(r) and _path_matches(p, r)
            ):
                chosen.append(disclosure)
                break
    return chosen


def present(
    held: HeldSDJWT | str,
    *,
    disclose: Iterable[Sequence[str | int | None]] | None = None,
    disclosures: Iterable[Disclosure] | None = None,
    holder_key: Mapping[str, Any] | None = None,
    audience: str | None = None,
    nonce: str | None = None,
    iat: int | None = None,
    include_nested: bool = True,
) -> str:
    """Build a presentation: chosen disclosures plus (with ``holder_key``) a KB-JWT.

    Choose by claim ``disclose`` paths or give ``disclosures`` directly.
    """
    if isinstance(held, str):
        held = parse(held)
    if disclosures is None:
        disclosures = select_disclosures(held, disclose or (), include_nested=include_nested)
    chosen = {d.digest for d in disclosures}
    raws = [d.raw for d in held.disclosures if d.digest in chosen]
    body = "~".join([held.jwt, *raws, ""])
    if holder_key is None:
        return body
    if audience is None or nonce is None:
        raise SDJWTError("a Key Binding JWT needs an audience and a nonce")
    kb_payload = {
        "iat": int(time.time()) if iat is None else iat,
        "aud": audience,
        "nonce": nonce,
        "sd_hash": jose.b64u_encode(hashlib.sha256(body.encode("ascii")).digest()),
    }
    try:
        kb = jose.sign_compact({"typ": KB_TYP}, _json_bytes(kb_payload), holder_key)
    except jose.JoseFailure as exc:
        raise SDJWTError(f"holder key: {exc}") from exc
    return body + kb


# --------------------------------------------------------------------------------------------
# verifier


def _verify_issuer_jwt(
    jwt: str, issuer_jwk: Mapping[str, Any], accepted_typs: frozenset[str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        key = jose.load_key(issuer_jwk)
    except jose.JoseFailure as exc:
        raise SDJWTError(f"issuer key: {exc}") from exc
    try:
        header, payload_bytes = jose.verify_compact(jwt, key)
    except jose.JoseFailure as exc:
        if exc.kind == "alg":
            raise SDJWTError(
                "issuer-signed JWT alg missing, none or not accepted for the issuer key"
            ) from exc
        if exc.kind == "signature":
            raise SDJWTError("issuer signature invalid") from exc
        raise SDJWTError("issuer-signed JWT is malformed") from exc
    if accepted_typs is not None and header.get("typ") not in accepted_typs:
        raise SDJWTError("issuer-signed JWT has the wrong typ")
    payload = _loads(payload_bytes, "JWT payload")
    if not isinstance(payload, dict):
        raise SDJWTError("JWT payload must be a JSON object")
    return header, payload


def _check_times(claims: Mapping[str, Any], now: int, skew: int) -> None:
    exp = claims.get("exp")
    if exp is not None:
        if not _is_number(exp):
            raise SDJWTError("exp must be a number")
        if now >= exp + skew:
            raise SDJWTError("credential expired")
    nbf = claims.get("nbf")
    if nbf is not None:
        if not _is_number(nbf):
            raise SDJWTError("nbf must be a number")
        if nbf > now + skew:
            raise SDJWTError("credential not yet valid")
    iat = claims.get("iat")
    if iat is not None:
        if not _is_number(iat):
            raise SDJWTError("iat must be a number")
        if iat > now + skew:
            raise SDJWTError("credential issued in the future")


def _verify_kb(
    split: _Split,
    claims: Mapping[str, Any],
    sd_alg_hash: Callable[[bytes], Any],
    *,
    expected_audience: str | None,
    expected_nonce: str | None,
    now: int,
    max_age_s: int,
    skew: int,
) -> dict[str, Any]:
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise SDJWTError("key binding required but the credential has no cnf.jwk")
    if "d" in cnf["jwk"]:  # refused before import: a private key is never parsed here
        raise SDJWTError("cnf.jwk must be a public key")
    try:
        key = jose.load_key(cnf["jwk"], cache=False)  # holder keys are single-use
    except jose.JoseFailure as exc:
        raise SDJWTError(f"holder key: {exc}") from exc
    try:
        header, payload_bytes = jose.verify_compact(split.kb_jwt, key)
    except jose.JoseFailure as exc:
        if exc.kind == "alg":
            raise SDJWTError("Key Binding JWT alg missing, none or not accepted for the holder key") from exc
        if exc.kind == "signature":
            raise SDJWTError("Key Binding JWT signature invalid") from exc
        raise SDJWTError("Key Binding JWT is malformed") from exc
    if header.get("typ") != KB_TYP:
        raise SDJWTError("Key Binding JWT must have typ kb+jwt")
    kb = _loads(payload_bytes, "Key Binding JWT payload")
    if not isinstance(kb, dict):
        raise SDJWTError("Key Binding JWT payload must be a JSON object")
    iat = kb.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise SDJWTError("Key Binding JWT needs a numeric iat")
    if iat > now + skew:
        raise SDJWTError("Key Binding JWT issued in the future")
    if now - iat > max_age_s:
        raise SDJWTError("Key Binding JWT is too old")
    if expected_nonce is None or kb.get("nonce") != expected_nonce:
        raise SDJWTError("Key Binding JWT nonce mismatch")
    if expected_audience is None or kb.get("aud") != expected_audience:
        raise SDJWTError("Key Binding JWT audience mismatch")
    sd_hash = jose.b64u_encode(sd_alg_hash(split.signed_part.encode("ascii")).digest())
    if kb.get("sd_hash") != sd_hash:
        raise SDJWTError("Key Binding JWT sd_hash does not match the presentation")
    return kb


def _verify(
    presentation: str,
    issuer_jwk: Mapping[str, Any],
    expected_audience: str | None,
    expected_nonce: str | None,
    require_key_binding: bool,
    now: int | None,
    accepted_typs: Iterable[str] | None,
    require_vct: bool,
    expected_issuer: str | None,
    kb_max_age_s: int,
    clock_skew_s: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, _Processor]:
    when = int(time.time()) if now is None else int(now)
    split = _split(presentation)
    typs = None if accepted_typs is None else frozenset(accepted_typs)
    header, payload = _verify_issuer_jwt(split.jwt, issuer_jwk, typs)
    disclosures = _decode_disclosures(split.disclosures)
    claims, proc = _process(payload, disclosures)
    if require_vct and not isinstance(payload.get("vct"), str):
        raise SDJWTError("SD-JWT VC without a string vct")
    if expected_issuer is not None and claims.get("iss") != expected_issuer:
        raise SDJWTError("unexpected issuer")
    _check_times(claims, when, clock_skew_s)
    kb: dict[str, Any] | None = None
    if split.kb_jwt:
        kb = _verify_kb(
            split,
            claims,
            hashlib.sha256,
            expected_audience=expected_audience,
            expected_nonce=expected_nonce,
            now=when,
            max_age_s=kb_max_age_s,
            skew=clock_skew_s,
        )
    elif require_key_binding:
        raise SDJWTError("key binding required but the presentation has no Key Binding JWT")
    return claims, header, kb, proc


def verify(
    presentation: str,
    *,
    issuer_jwk: Mapping[str, Any],
    expected_audience: str | None,
    expected_nonce: str | None,
    require_key_binding: bool = True,
    now: int | None = None,
    accepted_typs: Iterable[str] | None = VC_TYPS,
    require_vct: bool = True,
    expected_issuer: str | None = None,
    kb_max_age_s: int = KB_MAX_AGE_S,
    clock_skew_s: int = CLOCK_SKEW_S,
) -> Verified:
    """Full RFC 9901 section 7 verification; :func:`verify_presentation` returns just the claims.

    ``accepted_typs=None`` accepts any ``typ`` (plain SD-JWT); ``require_vct=False`` likewise drops
    the SD-JWT VC ``vct`` requirement. A KB-JWT is demanded when ``require_key_binding`` and is
    verified fully whenever it is present.
    """
    claims, header, kb, proc = _verify(
        presentation,
        issuer_jwk,
        expected_audience,
        expected_nonce,
        require_key_binding,
        now,
        accepted_typs,
        require_vct,
        expected_issuer,
        kb_max_age_s,
        clock_skew_s,
    )
    names = tuple(sorted({".".join(map(str, p)) for p in proc.used.values()}))
    return Verified(claims, header, kb, names)


def verify_presentation(
    presentation: str,
    *,
    issuer_jwk: Mapping[str, Any],
    expected_audience: str | None,
    expected_nonce: str | None,
    require_key_binding: bool = True,
    now: int | None = None,
) -> dict[str, Any]:
    """Verify an SD-JWT VC presentation strictly; returns the disclosed claims.

    The result holds the always-visible claims of the issuer-signed JWT plus every disclosed
    claim (``_sd``/``_sd_alg`` removed). Raises :class:`SDJWTError` on any failure.
    The checks are those of :func:`verify` with its defaults.
    """
    return _verify(
        presentation,
        issuer_jwk,
        expected_audience,
        expected_nonce,
        require_key_binding,
        now,
        VC_TYPS,
        True,
        None,
        KB_MAX_AGE_S,
        CLOCK_SKEW_S,
    )[0]
