"""Holder wallet: encrypted storage, single-use credential copies, DCQL preview and presentation.

Storage: one file, a JSON envelope around a PyNaCl ``SecretBox`` whose 32-byte key comes from the
passphrase through Argon2id (``nacl.pwhash.argon2id``; salt and cost parameters in the envelope).
The plaintext holds every holder private key and every credential copy; it never touches disk
unencrypted (writes go to a 0600 temporary file, then an atomic rename).

Copies: credentials arrive in batches (one SD-JWT per fresh holder key). A presentation uses an
unused copy and marks it used, so two presentations never share an issuer signature, a holder key
or a status index. When every copy is used the wallet refuses (``allow_reuse=True`` overrides).

Requests: an OpenID4VP request enters the wallet only through :meth:`Wallet.fetch_link` /
:meth:`Wallet.fetch_request` (or :meth:`Wallet.verify_request` for a Request Object passed by
value), which accept nothing but a Request Object signed by the verifier's did:key or by the leaf
of an X.509 chain that validates to one of the wallet's trust anchors (CA certificates the user
added with :meth:`Wallet.add_trust_anchors`; :mod:`identity.request_object`) and whose
certificates are not revoked by their CAs' CRLs (:mod:`identity.revocation`, fetched over HTTP and
kept in memory until their ``nextUpdate``). When the link says ``request_uri_method=post`` the wallet POSTs
its (static, the same for every user) metadata and a fresh ``wallet_nonce``, and refuses a Request
Object that does not carry that nonce.

HTTP (OpenID4VCI receive, OpenID4VP direct_post) goes through an injected ``httpx.Client``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from identity import dcql, issuer, jose, request_object, revocation, sdjwt

__all__ = [
    "WALLET_METADATA",
    "PreviewItem",
    "RequestLink",
    "StoredCopy",
    "StoredCredential",
    "TrustAnchor",
    "Wallet",
    "WalletError",
    "parse_authorization_request",
    "parse_request_link",
]

FORMAT_TAG: Final = "civitas-wallet"
VERSION: Final = 1
KDF_PROFILES: Final = {
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "interactive": (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "test": (argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN),  # fast, for tests only
}
MAX_BATCH: Final = 20
# What this wallet software supports (OpenID4VP 1.0 section 10), sent when it POSTs to a
# request_uri. It never depends on what the user holds, so it cannot single the user out.
WALLET_METADATA: Final[Mapping[str, Any]] = {
    "vp_formats_supported": {
        # issuer signatures it checks; KB-JWTs it signs (Ed25519 or P-256 holder keys)
        dcql.SD_JWT_FORMAT: {
            "sd-jwt_alg_values": ["EdDSA", "Ed25519", "ES256"],
            "kb-jwt_alg_values": ["EdDSA", "ES256"],
        },
        dcql.BBS_FORMAT: {},
    },
    # x509 prefixes are listed even before the user adds a trust anchor: the metadata stays static
    "client_id_prefixes_supported": list(request_object.CLIENT_ID_PREFIXES),
    "request_object_signing_alg_values_supported": list(request_object.REQUEST_OBJECT_ALGS),
    "response_types_supported": ["vp_token"],
    "response_modes_supported": ["direct_post"],
}


class WalletError(Exception):
    """Wrong passphrase, corrupt file, nothing to present, or a failed protocol step."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(slots=True)
class StoredCopy:
    credential: str
    holder_jwk: dict[str, Any]  # private
    used: bool = False


@dataclass(slots=True)
class StoredCredential:
    id: str
    format: str
    vct: str
    issuer: str | None
    received_ns: int
    claims: dict[str, Any]  # the holder's full view (for display and matching)
    copies: list[StoredCopy] = field(default_factory=list)

    @property
    def unused(self) -> int:
        return sum(1 for c in self.copies if not c.used)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "format": self.format,
            "vct": self.vct,
            "issuer": self.issuer,
            "received_ns": self.received_ns,
            "claims": self.claims,
            "copies": [
                {"credential": c.credential, "holder_jwk": c.holder_jwk, "used": c.used} for c in self.copies
            ],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StoredCredential:
        return cls(
            obj["id"],
            obj["format"],
            obj["vct"],
            obj.get("issuer"),
            obj["received_ns"],
            obj["claims"],
            [StoredCopy(c["credential"], c["holder_jwk"], c["used"]) for c in obj["copies"]],
        )


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """A CA certificate the wallet trusts for x509 verifiers (``x509_san_dns``/``x509_hash``)."""

    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, lowercase hex (what ``openssl x509 -fingerprint`` shows)."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def not_after(self) -> int:
        return int(self.certificate.not_valid_after_utc.timestamp())

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(Encoding.PEM).decode("ascii")


@dataclass(frozen=True, slots=True)
class PreviewItem:
    """One credential the wallet would present, and exactly what it would disclose."""

    query_id: str
    credential_id: str
    vct: str
    issuer: str | None
    disclosed: dict[str, Any]
    unused_copies: int


@dataclass(frozen=True, slots=True)
class RequestLink:
    """What an ``openid4vp://`` link (QR code) says: where the Request Object is, which verifier
    must have signed it, and how to fetch it (``request_uri_method``: ``get`` or ``post``)."""

    request_uri: str
    client_id: str | None = None
    request_uri_method: str = "get"


def parse_request_link(text: str) -> RequestLink:
    """Parse an ``openid4vp://`` link; a bare URL is its own request_uri (then the Request
    Object's own signed ``client_id`` is all there is to check). Every other link parameter is
    ignored: only the signed Request Object counts."""
    if not text.startswith("openid4vp:"):
        return RequestLink(text)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query, keep_blank_values=True)
    uris, client_ids = query.get("request_uri", []), query.get("client_id", [])
    methods = query.get("request_uri_method", [])
    if len(uris) != 1 or not uris[0] or len(client_ids) > 1:
        raise WalletError("the link must carry exactly one request_uri")
    if client_ids and not client_ids[0]:
        raise WalletError("the link has an empty client_id")
    if len(methods) > 1:
        raise WalletError("invalid_request_uri_method: the link names request_uri_method twice")
    method = methods[0] if methods else "get"
    if method not in request_object.REQUEST_URI_METHODS:
        raise WalletError(f"invalid_request_uri_method: {method!r} is neither get nor post")
    return RequestLink(uris[0], client_ids[0] if client_ids else None, method)


def parse_authorization_request(text: str) -> tuple[str, str | None]:
    """``(request_uri, client_id)`` of an ``openid4vp://`` link (see :func:`parse_request_link`,
    which also says how to fetch it)."""
    link = parse_request_link(text)
    return link.request_uri, link.client_id


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        return parts.scheme, (parts.hostname or "").lower(), parts.port
    except ValueError as exc:  # a port that is not a number
        raise WalletError("malformed URL in the presentation request") from exc


def _derive_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    if not passphrase:
        raise WalletError("a passphrase is required")
    return bytes(
        argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf-8"),
            salt,
            opslimit=opslimit,
            memlimit=memlimit,
        )
    )


class Wallet:
    def __init__(
        self,
        path: Path,
        key: bytes,
        kdf: Mapping[str, Any],
        credentials: list[StoredCredential],
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], int] | None = None,
        trust_anchors: Sequence[TrustAnchor] = (),
    ) -> None:
        self.path = path
        self.clock: Callable[[], int] = clock or (lambda: int(time.time()))
        self._key = key
        self._kdf = dict(kdf)
        self._credentials = credentials
        self._anchors = list(trust_anchors)
        self.http = http
        self._crls = revocation.CrlCache(self._fetch_crl)  # in memory only

    # ---------------------------------------------------------------------------------------
    # storage

    @classmethod
    def create(
        cls,
        path: Path | str,
        passphrase: str,
        *,
        kdf_profile: str = "interactive",
        http: httpx.Client | None = None,
        clock: Callable[[], int] | None = None,
    ) -> Wallet:
        path = Path(path)
        if path.exists():
            raise WalletError(f"{path} already exists")
        if kdf_profile not in KDF_PROFILES:
            raise WalletError(f"unknown kdf profile {kdf_profile!r}")
        opslimit, memlimit = KDF_PROFILES[kdf_profile]
        salt = secrets.token_bytes(argon2id.SALTBYTES)
        kdf = {"alg": "argon2id", "salt": _b64(salt), "opslimit": opslimit, "memlimit": memlimit}
        wallet = cls(path, _derive_key(passphrase, salt, opslimit, memlimit), kdf, [], http=http, clock=clock)
        wallet.save()
        return wallet

    @classmethod
    def open(
        cls,
        path: Path | str,
        passphrase: str,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], int] | None = None,
    ) -> Wallet:
        path = Path(path)
        try:
            envelope = json.loads(path.read_text())
            if envelope.get("format") != FORMAT_TAG or envelope.get("version") != VERSION:
                raise WalletError("not a wallet file of a supported version")
            kdf = envelope["kdf"]
            if kdf.get("alg") != "argon2id":
                raise WalletError("unsupported key derivation")
            key = _derive_key(passphrase, _unb64(kdf["salt"]), int(kdf["opslimit"]), int(kdf["memlimit"]))
            plaintext = nacl.secret.SecretBox(key).decrypt(_unb64(envelope["box"]))
        except nacl.exceptions.CryptoError as exc:
            raise WalletError("wrong passphrase or corrupted wallet") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WalletError("unreadable wallet file") from exc
        body = json.loads(plaintext)
        creds = [StoredCredential.from_json(c) for c in body["credentials"]]
        # files written before x509 verifiers were supported have no anchors
        anchors = [
            TrustAnchor(c)
            for pem in body.get("trust_anchors", [])
            for c in request_object.load_trust_anchors(pem)
        ]
        return cls(path, key, kdf, creds, http=http, clock=clock, trust_anchors=anchors)

    def save(self) -> None:
        # anchors live inside the box with the credentials: public, but whoever can write the file
        # must not be able to make the wallet trust another CA
        plain = {
            "credentials": [c.to_json() for c in self._credentials],
            "trust_anchors": [a.pem for a in self._anchors],
        }
        body = json.dumps(plain, separators=(",", ":"))
        box = nacl.secret.SecretBox(self._key).encrypt(body.encode("utf-8"))
        envelope = {"format": FORMAT_TAG, "version": VERSION, "kdf": self._kdf, "box": _b64(bytes(box))}
        tmp = self.path.with_name(self.path.name + f".{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(envelope))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ---------------------------------------------------------------------------------------
    # trust anchors (x509 verifiers)

    def trust_anchors(self) -> list[TrustAnchor]:
        return list(self._anchors)

    def add_trust_anchors(self, pem: str | bytes) -> list[TrustAnchor]:
        """Trust the CA certificates in ``pem`` for ``x509_san_dns``/``x509_hash`` verifiers; returns
        the ones that were new. Each must be a CA certificate; nothing is stored on error."""
        try:
            certs = request_object.load_trust_anchors(pem)
        except request_object.RequestObjectError as exc:
            raise WalletError(str(exc)) from exc
        known = {a.fingerprint for a in self._anchors}
        added: list[TrustAnchor] = []
        for cert in certs:
            anchor = TrustAnchor(cert)
            if anchor.fingerprint not in known:
                known.add(anchor.fingerprint)
                added.append(anchor)
        if added:
            self._anchors.extend(added)
            self.save()
        return added

    def remove_trust_anchor(self, fingerprint: str) -> TrustAnchor:
        """Stop trusting the anchor with this SHA-256 fingerprint (hex; ``:`` separators allowed)."""
        wanted = fingerprint.replace(":", "").lower()
        for anchor in self._anchors:
            if anchor.fingerprint == wanted:
                self._anchors.remove(anchor)
                self.save()
                return anchor
        raise WalletError("no trust anchor with that fingerprint")

    # ---------------------------------------------------------------------------------------
    # credentials

    def credentials(self) -> list[StoredCredential]:
        return list(self._credentials)

    def get(self, credential_id: str) -> StoredCredential:
        for c in self._credentials:
            if c.id == credential_id:
                return c
        raise WalletError("no such credential")

    def remove(self, credential_id: str) -> None:
        self._credentials = [c for c in self._credentials if c.id != credential_id]
        self.save()

    @staticmethod
    def new_holder_keys(count: int, *, alg: str = "EdDSA") -> list[dict[str, Any]]:
        if not 1 <= count <= MAX_BATCH:
            raise WalletError(f"batch size must be 1..{MAX_BATCH}")
        make = jose.generate_ed25519 if alg == "EdDSA" else jose.generate_ec_p256
        return [make() for _ in range(count)]

    def add_sd_jwt_batch(
        self,
        credentials: Sequence[str],
        holder_keys: Sequence[Mapping[str, Any]],
        *,
        issuer_jwk: Mapping[str, Any] | None = None,
        now_ns: int | None = None,
    ) -> StoredCredential:
        """Store one batch: each SD-JWT is matched to the holder key named in its ``cnf.jwk``."""
        if not credentials:
            raise WalletError("empty batch")
        by_thumb = {jose.load_key(jose.public_jwk(k)).thumbprint(): dict(k) for k in holder_keys}
        copies: list[StoredCopy] = []
        first: sdjwt.HeldSDJWT | None = None
        for text in credentials:
            try:
                held = sdjwt.parse(text, issuer_jwk=issuer_jwk)
            except sdjwt.SDJWTError as exc:
                raise WalletError(f"received credential rejected: {exc}") from exc
            cnf = held.payload.get("cnf")
            jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
            if not isinstance(jwk, dict):
                raise WalletError("credential is not bound to a holder key")
            key = by_thumb.get(jose.load_key(jwk).thumbprint())
            if key is None:
                raise WalletError("credential bound to a key this wallet did not create")
            if first is not None and (held.claims.get("vct"), held.claims.get("iss")) != (
                first.claims.get("vct"),
                first.claims.get("iss"),
            ):
                raise WalletError("a batch must hold copies of one credential")
            first = first or held
            copies.append(StoredCopy(text, key))
        if first is None:  # unreachable: credentials is non-empty
            raise WalletError("empty batch")
        claims = {k: v for k, v in first.claims.items() if k not in ("cnf", "status")}
        vct = claims.get("vct")
        if not isinstance(vct, str):
            raise WalletError("credential has no vct")
        iss = claims.get("iss")
        stored = StoredCredential(
            uuid.uuid4().hex,
            dcql.SD_JWT_FORMAT,
            vct,
            iss if isinstance(iss, str) else None,
            time.time_ns() if now_ns is None else now_ns,
            claims,
            copies,
        )
        self._credentials.append(stored)
        self.save()
        return stored

    def add_bbs_credential(self, credential: Any, *, now_ns: int | None = None) -> StoredCredential:
        """Store a BBS credential (``identity.bbs_credentials.BBSCredential``); it is reusable."""
        fields = credential.header_fields
        stored = StoredCredential(
            uuid.uuid4().hex,
            dcql.BBS_FORMAT,
            str(fields["vct"]),
            str(fields["iss"]),
            time.time_ns() if now_ns is None else now_ns,
            credential.claims,
            [StoredCopy(json.dumps(credential.to_json()), {})],
        )
        self._credentials.append(stored)
        self.save()
        return stored

    # ---------------------------------------------------------------------------------------
    # presentation

    def _candidates(self, allow_reuse: bool) -> list[dcql.HeldCredential]:
        return [
            dcql.HeldCredential(c.format, c.vct, c.claims, ref=c.id)
            for c in self._credentials
            if c.copies and (allow_reuse or c.unused or c.format == dcql.BBS_FORMAT)
        ]

    def _select(self, request: Mapping[str, Any], allow_reuse: bool) -> dcql.Selection:
        try:
            query = dcql.parse_query(request.get("dcql_query"))
        except dcql.DCQLError as exc:
            raise WalletError(f"request has no valid dcql_query: {exc}") from exc
        return dcql.evaluate(query, self._candidates(allow_reuse))

    def preview(self, request: Mapping[str, Any], *, allow_reuse: bool = False) -> list[PreviewItem]:
        """What :meth:`present` would disclose for this request (empty if it cannot be met)."""
        selection = self._select(request, allow_reuse)
        if not selection.satisfied:
            return []
        items = []
        for qid, matches in selection.matches.items():
            for m in matches:
                stored = self.get(str(m.credential.ref))
                items.append(
                    PreviewItem(
                        qid, stored.id, stored.vct, stored.issuer, m.disclosed_values(), stored.unused
                    )
                )
        return items

    def present(
        self, request: Mapping[str, Any], *, allow_reuse: bool = False, now: int | None = None
    ) -> dict[str, list[str]]:
        """Build the ``vp_token`` for an OpenID4VP request object; uses up one copy per credential."""
        audience, nonce = request.get("client_id"), request.get("nonce")
        if not isinstance(audience, str) or not isinstance(nonce, str):
            raise WalletError("request has no client_id or nonce")
        selection = self._select(request, allow_reuse)
        if not selection.satisfied:
            raise WalletError("no credential in this wallet satisfies the request")
        vp_token: dict[str, list[str]] = {}
        for qid, matches in selection.matches.items():
            out = []
            for m in matches:
                stored = self.get(str(m.credential.ref))
                if stored.format == dcql.BBS_FORMAT:
                    out.append(
                        self._present_bbs(stored, m, audience, nonce, request.get("pseudonym_context"))
                    )
                    continue
                copy = next((c for c in stored.copies if not c.used), None)
                if copy is None:
                    if not allow_reuse:
                        raise WalletError("every copy of this credential was used; request a new batch")
                    copy = stored.copies[-1]
                held = sdjwt.parse(copy.credential)
                out.append(
                    sdjwt.present(
                        held,
                        disclose=m.paths,
                        holder_key=copy.holder_jwk,
                        audience=audience,
                        nonce=nonce,
                        iat=self.clock() if now is None else now,
                    )
                )
                copy.used = True
            vp_token[qid] = out
        self.save()
        return vp_token

    @staticmethod
    def _present_bbs(
        stored: StoredCredential, match: dcql.CredentialMatch, audience: str, nonce: str, context: Any
    ) -> str:
        from identity import bbs_credentials as bc

        cred = bc.BBSCredential.from_json(json.loads(stored.copies[0].credential))
        names = {str(p[0]) for p in match.paths if p and p[0] not in ("vct", "iss", "iat", "exp")}
        return bc.present(
            cred,
            sorted(names),
            audience=audience,
            nonce=nonce,
            pseudonym_context=context if isinstance(context, str) else None,
        )

    # ---------------------------------------------------------------------------------------
    # HTTP flows

    def _client(self) -> httpx.Client:
        if self.http is None:
            raise WalletError("this wallet has no HTTP client")
        return self.http

    def _fetch_crl(self, url: str) -> bytes:
        """A CRL from an X.509 verifier's chain, at most ``revocation.CRL_MAX_BYTES``."""
        if self.http is None:
            raise revocation.RevocationError("this wallet has no HTTP client to fetch the CRL")
        return revocation.http_fetch(self.http, url)

    def _json(self, response: httpx.Response, step: str) -> dict[str, Any]:
        if response.status_code >= 400:
            try:
                detail = response.json()
                error = detail.get("error") or detail.get("title") or response.status_code
            except ValueError:
                error = response.status_code
            raise WalletError(f"{step} failed: {error}")
        try:
            body = response.json()
        except ValueError as exc:
            raise WalletError(f"{step}: response is not JSON") from exc
        if not isinstance(body, dict):
            raise WalletError(f"{step}: response is not a JSON object")
        return body

    def receive(
        self, offer: Mapping[str, Any] | str, *, tx_code: str | None = None, batch_size: int = 5
    ) -> StoredCredential:
        """OpenID4VCI pre-authorized code flow: metadata, token, nonce, batch credential request."""
        parsed: Any = json.loads(offer) if isinstance(offer, str) else offer
        if not isinstance(parsed, Mapping):
            raise WalletError("credential offer must be a JSON object")
        offer_obj: Mapping[str, Any] = parsed
        http = self._client()
        try:
            issuer_id = str(offer_obj["credential_issuer"])
            config_id = str(offer_obj["credential_configuration_ids"][0])
            grant = offer_obj["grants"][issuer.PRE_AUTH_GRANT]
        except (KeyError, IndexError, TypeError) as exc:
            raise WalletError("credential offer lacks issuer, configuration or pre-authorized code") from exc
        meta = self._json(http.get(f"{issuer_id}/.well-known/openid-credential-issuer"), "issuer metadata")
        if meta.get("credential_issuer") != issuer_id:
            raise WalletError("issuer metadata names another issuer")
        token_endpoint = f"{issuer_id}/oauth/token"
        as_meta = http.get(f"{issuer_id}/.well-known/oauth-authorization-server")
        if as_meta.status_code == 200:
            token_endpoint = self._json(as_meta, "authorization server metadata").get(
                "token_endpoint", token_endpoint
            )
        form = {"grant_type": issuer.PRE_AUTH_GRANT, "pre-authorized_code": grant["pre-authorized_code"]}
        if tx_code is not None:
            form["tx_code"] = tx_code
        token = self._json(http.post(token_endpoint, data=form), "token request")
        access = token["access_token"]
        configuration = meta.get("credential_configurations_supported", {}).get(config_id, {})
        if configuration.get("format") == dcql.BBS_FORMAT:
            return self._receive_bbs(http, meta, config_id, access)
        nonce = self._json(http.post(meta["nonce_endpoint"]), "nonce request")["c_nonce"]
        limit = int(meta.get("batch_credential_issuance", {}).get("batch_size", 1))
        keys = self.new_holder_keys(max(1, min(batch_size, limit)))
        proofs = [issuer.make_proof(k, audience=issuer_id, nonce=nonce, iat=self.clock()) for k in keys]
        body = self._json(
            http.post(
                meta["credential_endpoint"],
                json={"credential_configuration_id": config_id, "proofs": {"jwt": proofs}},
                headers={"Authorization": f"Bearer {access}"},
            ),
            "credential request",
        )
        creds = [c["credential"] for c in body.get("credentials", [])]
        issuer_jwk = None
        vc_meta = http.get(f"{issuer_id}/.well-known/jwt-vc-issuer")
        if vc_meta.status_code == 200:
            keys_doc = self._json(vc_meta, "jwt-vc-issuer metadata").get("jwks", {}).get("keys", [])
            if keys_doc:
                issuer_jwk = keys_doc[0]
        return self.add_sd_jwt_batch(creds, keys, issuer_jwk=issuer_jwk)

    def _receive_bbs(
        self, http: httpx.Client, meta: Mapping[str, Any], config_id: str, access: str
    ) -> StoredCredential:
        from identity import bbs_credentials as bc

        nym_request = bc.start_request()
        body = self._json(
            http.post(
                meta["credential_endpoint"],
                json={
                    "credential_configuration_id": config_id,
                    "proofs": {issuer.BBS_PROOF_TYPE: [jose.b64u_encode(nym_request.commitment)]},
                },
                headers={"Authorization": f"Bearer {access}"},
            ),
            "credential request",
        )
        try:
            issued = bc.IssuedBBS.from_json(body["credentials"][0]["credential"])
            credential = bc.accept(issued, nym_request)
        except (KeyError, IndexError, TypeError, bc.BBSCredentialError) as exc:
            raise WalletError(f"received BBS credential rejected: {exc}") from exc
        return self.add_bbs_credential(credential)

    def sign_in(self, base_url: str, *, service: str = "civitas", scope: str | None = None) -> dict[str, Any]:
        """Citizen sign-in: present a BBS credential to the service; returns its token response.

        The token's subject is this credential's pseudonym for ``service`` (stable for that
        service, unlinkable across services). No claim is disclosed.
        """
        http = self._client()
        base = base_url.rstrip("/")
        body: dict[str, Any] = {"service": service}
        if scope is not None:
            body["scope"] = scope
        session = self._json(http.post(f"{base}/identity/citizen-sessions", json=body), "sign-in")
        link = str(session["authorization_request_uri"])
        if parse_request_link(link).request_uri != session["request_uri"]:
            raise WalletError("sign-in: the link and the request_uri disagree")
        self.respond(self.fetch_link(link))
        return self._json(
            http.post(
                f"{base}/identity/citizen-sessions/{session['id']}/token",
                json={"session_secret": session["session_secret"]},
            ),
            "sign-in token",
        )

    def verify_request(
        self,
        token: str,
        *,
        client_id: str | None = None,
        request_uri: str | None = None,
        wallet_nonce: str | None = None,
    ) -> dict[str, Any]:
        """Verify a signed Request Object; returns its parameters (see identity.request_object).

        ``client_id`` is the one the authorization request (link or QR code) carried;
        ``request_uri`` where the object came from: the answer must go to the same origin;
        ``wallet_nonce`` the one this wallet POSTed: the object must carry exactly that value.
        """
        try:
            params = request_object.verify_request(
                token,
                now=self.clock(),
                trust_anchors=[a.certificate for a in self._anchors],
                expected_client_id=client_id,
                expected_wallet_nonce=wallet_nonce,
                crls=self._crls,
            )
        except request_object.RequestObjectError as exc:
            raise WalletError(f"presentation request refused: {exc}") from exc
        if request_uri is not None and _origin(str(params["response_uri"])) != _origin(request_uri):
            raise WalletError("presentation request refused: response_uri is on another origin")
        return params

    def fetch_link(self, link: str) -> dict[str, Any]:
        """Fetch and verify the Request Object an ``openid4vp://`` link (or bare request_uri)
        points to, with the method the link names."""
        parsed = parse_request_link(link)
        return self.fetch_request(
            parsed.request_uri, client_id=parsed.client_id, request_uri_method=parsed.request_uri_method
        )

    def fetch_request(
        self, request_uri: str, *, client_id: str | None = None, request_uri_method: str = "get"
    ) -> dict[str, Any]:
        """Fetch the signed Request Object (RFC 9101) and verify it; an unsigned request is refused.

        ``get``: a plain GET. ``post`` (OpenID4VP 1.0 section 5.10): a form POST of
        :data:`WALLET_METADATA` and a fresh 192-bit ``wallet_nonce`` that the returned object
        must carry, so an object recorded earlier (or meant for another wallet) is refused.
        """
        if request_uri_method not in request_object.REQUEST_URI_METHODS:
            raise WalletError(f"invalid_request_uri_method: {request_uri_method!r} is neither get nor post")
        headers = {"Accept": request_object.MEDIA_TYPE}
        wallet_nonce = None
        if request_uri_method == "post":
            wallet_nonce = secrets.token_urlsafe(24)
            form = {
                "wallet_metadata": json.dumps(WALLET_METADATA, separators=(",", ":")),
                "wallet_nonce": wallet_nonce,
            }
            response = self._client().post(request_uri, data=form, headers=headers)
        else:
            response = self._client().get(request_uri, headers=headers)
        if response.status_code >= 400:
            self._json(response, "presentation request")  # raises with the verifier's error code
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != request_object.MEDIA_TYPE:
            raise WalletError(
                f"presentation request refused: expected {request_object.MEDIA_TYPE}, got {media_type!r}"
            )
        return self.verify_request(
            response.text.strip(), client_id=client_id, request_uri=request_uri, wallet_nonce=wallet_nonce
        )

    def respond(self, request: Mapping[str, Any], *, allow_reuse: bool = False) -> dict[str, Any]:
        """Present and POST the vp_token to the request's response_uri (direct_post)."""
        if request.get("response_mode") != "direct_post":
            raise WalletError("only response_mode direct_post is supported")
        vp_token = self.present(request, allow_reuse=allow_reuse)
        response = self._client().post(
            str(request["response_uri"]),
            data={"vp_token": json.dumps(vp_token), "state": str(request["state"])},
        )
        return self._json(response, "presentation response")
