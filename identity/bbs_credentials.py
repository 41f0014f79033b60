"""BBS credentials (format ``civitas-bbs``): one BBS message per claim, pseudonyms per verifier.

Built on :mod:`identity.bbs` (BLS12-381-SHA-256) and :mod:`identity.bbs.pseudonym`.

* **Messages**: every claim (raw and derived predicates) becomes one message, the UTF-8 of the
  canonical JSON array ``[name, value]``; messages are ordered by claim name. The Token Status
  List reference is one more message, ``["status", {"status_list": {"idx": i, "uri": ...}}]``:
  signed like any claim, disclosed only when a verifier asks for it (it is the same in every
  presentation, so disclosing it makes those presentations linkable).
* **Header** (signed, always visible): canonical JSON
  ``{"typ": "civitas-bbs-vc", "iss": ..., "vct": ..., "iat": day, "exp": day, "claims": [names]}``.
  It binds issuer, type and validity, and tells a verifier which index holds which claim. ``iat``
  and ``exp`` are whole UTC days so every credential of a type issued on one day has the same header.
* **Issuance** is blind with a pseudonym secret (draft-irtf-cfrg-bbs-per-verifier-linkability): the
  wallet sends a commitment to its secret (:func:`start_request`), the issuer signs the claims
  together with it (:func:`issue`), the wallet checks and finalises (:func:`accept`). The issuer never
  learns the secret, so it cannot compute the holder's pseudonyms.
* **Presentation** (:func:`present`): a BBS proof with pseudonym, disclosing only the requested claims.
  The presentation header binds the verifier: canonical JSON ``{"aud": client_id, "nonce": nonce}``.
  The pseudonym context is the verifier's ``pseudonym_context`` when it asks for one (the same
  citizen then always shows the same pseudonym to that verifier) and a fresh random context
  otherwise (the pseudonym is then meaningless and unlinkable).
* **Wire form** of a presentation: base64url of canonical JSON
  ``{"v": 1, "header": b64u, "proof": b64u, "nym": b64u, "ctx": str, "n": message_count,
  "disclosed": [[index, b64u(message)], ...]}``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from identity import bbs, did_key, jose, status_list
from identity.bbs import pseudonym

__all__ = [
    "FORMAT",
    "HEADER_TYP",
    "BBSCredential",
    "BBSCredentialError",
    "BBSIssuerKey",
    "IssuedBBS",
    "NymRequest",
    "VerifiedBBS",
    "accept",
    "benchmark_fixture",
    "issue",
    "present",
    "presentation_header",
    "start_request",
    "verify_presentation",
]

FORMAT: Final = "civitas-bbs"
HEADER_TYP: Final = "civitas-bbs-vc"
SUITE: Final = bbs.BLS12_381_SHA_256
DAY_S: Final = 86_400
MAX_PRESENTATION_CHARS: Final = 64 * 1024
MAX_CLAIMS: Final = 64
STATUS_CLAIM: Final = "status"


class BBSCredentialError(ValueError):
    """A malformed or unverifiable BBS credential or presentation."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _b64(data: bytes) -> str:
    return jose.b64u_encode(data)


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BBSCredentialError(f"{what} must be a base64url string")
    try:
        return jose.b64u_decode(text)
    except jose.JoseFailure as exc:
        raise BBSCredentialError(f"{what} is not base64url") from exc


def encode_message(name: str, value: Any) -> bytes:
    return _canonical([name, value])


def presentation_header(audience: str, nonce: str) -> bytes:
    return _canonical({"aud": audience, "nonce": nonce})


@dataclass(frozen=True, slots=True)
class BBSIssuerKey:
    secret_key: bytes
    public_key: bytes

    @classmethod
    def generate(cls) -> BBSIssuerKey:
        return cls.from_seed(secrets.token_bytes(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> BBSIssuerKey:
        sk = SUITE.keygen(seed)
        return cls(sk, SUITE.sk_to_pk(sk))

    @property
    def did(self) -> str:
        return did_key.encode("Bls12381G2", self.public_key)

    def public_entry(self) -> dict[str, str]:
        """How a verifier's trusted-issuer registry holds this key."""
        return {"kty": "BBS", "did": self.did}

    def __repr__(self) -> str:
        return f"BBSIssuerKey({self.did[:24]}...)"


def public_key_from_entry(entry: Mapping[str, Any]) -> bytes:
    if entry.get("kty") != "BBS" or not isinstance(entry.get("did"), str):
        raise BBSCredentialError("not a BBS issuer key")
    parsed = did_key.decode(entry["did"])
    if parsed.key_type != "Bls12381G2":
        raise BBSCredentialError("BBS issuer keys are BLS12-381 G2 did:keys")
    return parsed.public_key


# --------------------------------------------------------------------------------------------
# issuance


@dataclass(frozen=True, slots=True)
class NymRequest:
    """The wallet's side of a blind issuance: send ``commitment``, keep the secrets."""

    prover_nyms: tuple[int, ...]
    secret_prover_blind: int
    commitment: bytes


def start_request() -> NymRequest:
    nyms = pseudonym.generate_prover_nyms(SUITE, 1)
    commitment, blind = pseudonym.nym_commit(SUITE, nyms)
    return NymRequest(tuple(nyms), blind, commitment)


@dataclass(frozen=True, slots=True)
class IssuedBBS:
    """What the issuer returns (JSON via :meth:`to_json`)."""

    header: bytes
    messages: tuple[bytes, ...]
    signature: bytes
    signer_nym_entropy: int
    issuer_did: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "header": _b64(self.header),
            "messages": [_b64(m) for m in self.messages],
            "signature": _b64(self.signature),
            "signer_nym_entropy": str(self.signer_nym_entropy),
            "issuer": self.issuer_did,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> IssuedBBS:
        try:
            return cls(
                _unb64(obj["header"], "header"),
                tuple(_unb64(m, "message") for m in obj["messages"]),
                _unb64(obj["signature"], "signature"),
                int(obj["signer_nym_entropy"]),
                str(obj["issuer"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BBSCredentialError("malformed BBS credential response") from exc


def issue(
    claims: Mapping[str, Any],
    *,
    key: BBSIssuerKey,
    iss: str,
    vct: str,
    commitment: bytes,
    now_s: int | None = None,
    validity_s: int = 365 * DAY_S,
    status: Mapping[str, Any] | None = None,
) -> IssuedBBS:
    """Blind-sign ``claims`` for the holder that made ``commitment`` (one pseudonym secret).

    ``status`` (a Token Status List reference, ``{"status_list": {"idx", "uri"}}``) is signed as
    the message of the claim ``status``.
    """
    if STATUS_CLAIM in claims:
        raise BBSCredentialError("the status reference is given as status=, not as a claim")
    if status is not None:
        try:
            status_list.parse_status_claim(status)
        except status_list.StatusListError as exc:
            raise BBSCredentialError(f"status reference: {exc}") from exc
        claims = {**claims, STATUS_CLAIM: dict(status)}
    if not claims or len(claims) > MAX_CLAIMS:
        raise BBSCredentialError(f"a BBS credential holds 1..{MAX_CLAIMS} claims")
    now = int(time.time()) if now_s is None else now_s
    day = now - now % DAY_S
    names = sorted(claims)
    header = _canonical(
        {"typ": HEADER_TYP, "iss": iss, "vct": vct, "iat": day, "exp": day + validity_s, "claims": names}
    )
    messages = tuple(encode_message(n, claims[n]) for n in names)
    try:
        signed = pseudonym.blind_sign_with_nym(
            SUITE, key.secret_key, key.public_key, commitment, 1, header=header, messages=messages
        )
    except (bbs.InvalidError, ValueError) as exc:
        raise BBSCredentialError("commitment rejected") from exc
    return IssuedBBS(header, messages, signed.signature, signed.signer_nym_entropy, key.did)


@dataclass(frozen=True, slots=True)
class BBSCredential:
    """What the wallet keeps."""

    header: bytes
    messages: tuple[bytes, ...]
    signature: bytes
    nym_secrets: tuple[int, ...]
    secret_prover_blind: int
    issuer_did: str

    @property
    def header_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(self.header)
        return fields

    @property
    def names(self) -> list[str]:
        return list(self.header_fields["claims"])

    @property
    def status(self) -> dict[str, Any] | None:
        """The signed status-list reference, if the issuer gave one."""
        value = self.claims.get(STATUS_CLAIM)
        return value if isinstance(value, dict) else None

    @property
    def claims(self) -> dict[str, Any]:
        h = self.header_fields
        out: dict[str, Any] = {"vct": h["vct"], "iss": h["iss"], "iat": h["iat"], "exp": h["exp"]}
        for m in self.messages:
            name, value = json.loads(m)
            out[name] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "header": _b64(self.header),
            "messages": [_b64(m) for m in self.messages],
            "signature": _b64(self.signature),
            "nym_secrets": [str(s) for s in self.nym_secrets],
            "secret_prover_blind": str(self.secret_prover_blind),
            "issuer": self.issuer_did,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BBSCredential:
        try:
            return cls(
                _unb64(obj["header"], "header"),
                tuple(_unb64(m, "message") for m in obj["messages"]),
                _unb64(obj["signature"], "signature"),
                tuple(int(s) for s in obj["nym_secrets"]),
                int(obj["secret_prover_blind"]),
                str(obj["issuer"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BBSCredentialError("malformed stored BBS credential") from exc


def accept(issued: IssuedBBS, request: NymRequest) -> BBSCredential:
    """Wallet: check the blind signature and finalise the pseudonym secret."""
    pk = did_key.decode(issued.issuer_did)
    if pk.key_type != "Bls12381G2":
        raise BBSCredentialError("issuer key is not a BLS12-381 G2 key")
    secrets_ = pseudonym.verify_finalize_with_nym(
        SUITE,
        pk.public_key,
        issued.signature,
        issued.header,
        issued.messages,
        (),
        request.prover_nyms,
        issued.signer_nym_entropy,
        request.secret_prover_blind,
    )
    if secrets_ is None:
        raise BBSCredentialError("issuer signature does not verify")
    cred = BBSCredential(
        issued.header,
        issued.messages,
        issued.signature,
        tuple(secrets_),
        request.secret_prover_blind,
        issued.issuer_did,
    )
    if cred.header_fields.get("typ") != HEADER_TYP or len(cred.names) != len(cred.messages):
        raise BBSCredentialError("credential header does not describe its messages")
    return cred


# --------------------------------------------------------------------------------------------
# presentation


def present(
    credential: BBSCredential,
    disclose: Iterable[str],
    *,
    audience: str,
    nonce: str,
    pseudonym_context: str | None = None,
) -> str:
    """A presentation disclosing the named claims, bound to this verifier's audience and nonce."""
    names = credential.names
    wanted = set(disclose)
    unknown = wanted - set(names)
    if unknown:
        raise BBSCredentialError("requested claims are not in this credential")
    indexes = [i for i, n in enumerate(names) if n in wanted]
    context = pseudonym_context if pseudonym_context is not None else "random:" + secrets.token_hex(16)
    pk = did_key.decode(credential.issuer_did).public_key
    proof, nym = pseudonym.proof_gen_with_nym(
        SUITE,
        pk,
        credential.signature,
        list(credential.nym_secrets),
        context.encode("utf-8"),
        header=credential.header,
        ph=presentation_header(audience, nonce),
        messages=list(credential.messages),
        disclosed_indexes=indexes,
        secret_prover_blind=credential.secret_prover_blind,
    )
    body = {
        "v": 1,
        "header": _b64(credential.header),
        "proof": _b64(proof),
        "nym": _b64(nym),
        "ctx": context,
        "n": len(credential.messages),
        "disclosed": [[i, _b64(credential.messages[i])] for i in indexes],
    }
    return _b64(_canonical(body))


@dataclass(frozen=True, slots=True)
class VerifiedBBS:
    issuer: str
    vct: str
    claims: dict[str, Any]  # header fields (vct, iss, iat, exp) plus the disclosed claims
    pseudonym: str | None  # only when the verifier asked for a pseudonym context

    @property
    def status(self) -> dict[str, Any] | None:
        """The status-list reference when the holder disclosed it (see the module docstring)."""
        value = self.claims.get(STATUS_CLAIM)
        return value if isinstance(value, dict) else None


def _unb64_json(text: Any, what: str) -> Any:
    raw = _unb64(text, what)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BBSCredentialError(f"{what} is not JSON") from exc


def _is_utf8(text: str) -> bool:
    """False for a string holding lone surrogates (JSON allows them; UTF-8 cannot encode them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_presentation(text: str) -> dict[str, Any]:
    if not isinstance(text, str) or len(text) > MAX_PRESENTATION_CHARS:
        raise BBSCredentialError("presentation too large or not a string")
    body = _unb64_json(text, "presentation")
    if not isinstance(body, dict) or body.get("v") != 1:
        raise BBSCredentialError("unsupported presentation version")
    header = _unb64_json(body.get("header"), "header")
    if not isinstance(header, dict) or header.get("typ") != HEADER_TYP:
        raise BBSCredentialError("not a Civitas BBS credential header")
    body["_header"] = header
    return body


def verify_presentation(
    text: str,
    *,
    issuer_public_key: bytes,
    expected_audience: str,
    expected_nonce: str,
    expected_context: str | None = None,
    now: int | None = None,
) -> VerifiedBBS:
    """Verify a presentation; raises :class:`BBSCredentialError` on any failure."""
    body = parse_presentation(text)
    header: dict[str, Any] = body["_header"]
    when = int(time.time()) if now is None else now
    names = header.get("claims")
    n = body.get("n")
    if not isinstance(names, list) or not isinstance(n, int) or len(names) != n or n > MAX_CLAIMS:
        raise BBSCredentialError("header claims do not match the message count")
    exp, iat = header.get("exp"), header.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise BBSCredentialError("header validity missing")
    if when >= exp:
        raise BBSCredentialError("credential expired")
    if iat > when + DAY_S:
        raise BBSCredentialError("credential issued in the future")
    ctx = body.get("ctx")
    if not isinstance(ctx, str) or not ctx or len(ctx) > 200 or not _is_utf8(ctx):
        raise BBSCredentialError("missing pseudonym context")
    if expected_context is not None and ctx != expected_context:
        raise BBSCredentialError("pseudonym for another verifier context")
    disclosed = body.get("disclosed")
    if not isinstance(disclosed, list):
        raise BBSCredentialError("disclosed must be a list")
    indexes: list[int] = []
    messages: list[bytes] = []
    claims: dict[str, Any] = {"vct": header.get("vct"), "iss": header.get("iss"), "iat": iat, "exp": exp}
    for item in disclosed:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
            raise BBSCredentialError("disclosed entries are [index, message]")
        index, message = item[0], _unb64(item[1], "message")
        if not 0 <= index < n or (indexes and index <= indexes[-1]):
            raise BBSCredentialError("disclosed indexes must be increasing and in range")
        try:
            name, value = json.loads(message)
        except (ValueError, TypeError) as exc:
            raise BBSCredentialError("disclosed message is not a [name, value] pair") from exc
        if name != names[index] or name in claims:
            raise BBSCredentialError("disclosed message does not match the header's claim name")
        indexes.append(index)
        messages.append(message)
        claims[name] = value
    ok = pseudonym.proof_verify_with_nym(
        SUITE,
        issuer_public_key,
        _unb64(body.get("proof"), "proof"),
        _unb64(body.get("nym"), "pseudonym"),
        ctx.encode("utf-8"),
        1,
        header=_unb64(body.get("header"), "header"),
        ph=presentation_header(expected_audience, expected_nonce),
        signer_message_count=n,
        disclosed_messages=messages,
        disclosed_indexes=indexes,
    )
    if not ok:
        raise BBSCredentialError("BBS proof does not verify (wrong key, audience, nonce or tampering)")
    nym = body["nym"] if expected_context is not None else None
    return VerifiedBBS(str(header.get("iss")), str(header.get("vct")), claims, nym)


# --------------------------------------------------------------------------------------------
# benchmark support


class _Bench:
    def __init__(self, claims: Mapping[str, Any], disclose: Sequence[str], vct: str) -> None:
        self.key = BBSIssuerKey.from_seed(b"\x07" * 32)
        self.claims = dict(claims)
        self.disclose = list(disclose)
        self.vct = vct
        self.request = start_request()
        issued = issue(
            self.claims, key=self.key, iss="https://city.example", vct=vct, commitment=self.request.commitment
        )
        self.credential = accept(issued, self.request)
        self.presentations = [
            present(self.credential, self.disclose, audience="https://v.example", nonce=f"n{i}")
            for i in range(8)
        ]

    def issue(self, count: int) -> None:
        for _ in range(count):
            issue(
                self.claims,
                key=self.key,
                iss="https://city.example",
                vct=self.vct,
                commitment=self.request.commitment,
            )

    def present(self, count: int) -> None:
        for i in range(count):
            present(self.credential, self.disclose, audience="https://v.example", nonce=f"n{i % 8}")

    def verify(self, count: int) -> None:
        for i in range(count):
            verify_presentation(
                self.presentations[i % 8],
                issuer_public_key=self.key.public_key,
                expected_audience="https://v.example",
                expected_nonce=f"n{i % 8}",
            )


def benchmark_fixture(claims: Mapping[str, Any], disclose: Sequence[str], *, vct: str) -> _Bench:
    """Issuer key, one credential and a few presentations, for ``python -m bench credentials``."""
    return _Bench(claims, disclose, vct)
