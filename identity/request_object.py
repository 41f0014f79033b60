"""Signed OpenID4VP Request Objects (RFC 9101 JAR): what a wallet accepts, and the verifier's signer.

A wallet fetches the Request Object from ``request_uri`` and gets ``application/oauth-authz-req+jwt``:
a compact JWS with ``typ`` ``oauth-authz-req+jwt`` whose payload holds the Authorization Request
parameters plus ``iss`` (= ``client_id``), ``aud`` (``https://self-issued.me/v2``: static discovery,
section 5.8), ``iat`` and ``exp``. The Client Identifier prefix (OpenID4VP 1.0 section 5.9.3) only
decides how the signing key is found and which extra checks run; every other check is shared.

``decentralized_identifier:<did:key>`` (:meth:`RequestSigner.did_key`, what this service signs with
unless it has a certificate): header
``{"typ": …, "alg": "EdDSA", "kid": "did:key:z…#z…"}``. A did:key resolves offline (one
verification method, ``did#<multibase>``), so the key comes from ``kid`` and ``client_id`` must
name that same DID. No network, no trust anchors.

``x509_san_dns:<dns name>`` and ``x509_hash:<base64url SHA-256 of the leaf DER>``: header
``{"typ": …, "alg": "ES256" | "EdDSA", "x5c": [leaf, intermediate, …]}`` (RFC 7515: standard
base64 DER, leaf first; at most :data:`X5C_MAX_CERTS` entries of :data:`X5C_MAX_CERT_CHARS`
characters each). The chain must validate to one of the wallet's trust anchors at ``now`` with
``cryptography``'s path validation (validity, signatures, CA constraints, web-PKI CA rules; on the
leaf any extended key usage, and a key usage, where present, that allows signatures); the leaf key
(P-256 for ES256, Ed25519 for EdDSA) verifies the JWS. ``x509_san_dns`` needs the name as a
dNSName SAN of the leaf (exact, case-insensitive, no wildcards) and, as the wallet keeps no list of
trusted client identifiers, the ``response_uri`` host equal to it; ``x509_hash`` needs the hash of
the leaf. ``kid``, ``jwk``, ``jku`` and ``x5u`` are refused with an x509 prefix (and ``x5c`` with a
DID), so the key has exactly one source. Without trust anchors x509 verifiers are refused. Given
a :class:`~identity.revocation.CrlCache` (the wallet always gives one), every certificate of the
validated path must also pass its CA's CRL. A service with a certificate signs this way
(:meth:`RequestSigner.x509`).

The ``redirect_uri`` prefix is not supported: by the specification its requests cannot be signed,
so a wallet could not authenticate the verifier. Other prefixes are refused too.

Request URI method ``post`` (OpenID4VP 1.0 section 5.10): the wallet may send a fresh
``wallet_nonce`` when it fetches the Request Object; the verifier signs it into the object and the
wallet refuses an object without that exact value (``expected_wallet_nonce``), so a recorded
Request Object cannot be replayed to it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from identity import did_key, jose, revocation

__all__ = [
    "CLIENT_ID_PREFIX",
    "CLIENT_ID_PREFIXES",
    "MEDIA_TYPE",
    "REQUEST_OBJECT_ALGS",
    "REQUEST_URI_METHODS",
    "SELF_ISSUED_AUD",
    "SIGNING_ALG",
    "TYP",
    "WALLET_NONCE_MAX_CHARS",
    "X5C_MAX_CERTS",
    "X5C_MAX_CERT_CHARS",
    "X509_HASH_PREFIX",
    "X509_SAN_DNS_PREFIX",
    "RequestObjectError",
    "RequestSigner",
    "check_wallet_nonce",
    "client_id_for",
    "is_dns_name",
    "load_trust_anchors",
    "sign_request",
    "verify_request",
    "x509_hash",
]

TYP: Final = "oauth-authz-req+jwt"
MEDIA_TYPE: Final = "application/oauth-authz-req+jwt"
SELF_ISSUED_AUD: Final = "https://self-issued.me/v2"
CLIENT_ID_PREFIX: Final = "decentralized_identifier:"  # the prefix this service signs with
X509_SAN_DNS_PREFIX: Final = "x509_san_dns:"
X509_HASH_PREFIX: Final = "x509_hash:"
CLIENT_ID_PREFIXES: Final = tuple(p[:-1] for p in (CLIENT_ID_PREFIX, X509_SAN_DNS_PREFIX, X509_HASH_PREFIX))
SIGNING_ALG: Final = "EdDSA"
# what a wallet verifies: EdDSA (and its fully specified name) for Ed25519 keys, ES256 for P-256
REQUEST_OBJECT_ALGS: Final = ("EdDSA", "Ed25519", "ES256")
X5C_MAX_CERTS: Final = 5
X5C_MAX_CERT_CHARS: Final = 8192  # base64 of one certificate: 6 KiB of DER, far above real ones
REQUEST_URI_METHODS: Final = ("get", "post")  # case-sensitive (OpenID4VP 1.0 section 5.1)
WALLET_NONCE_MAX_CHARS: Final = 128
# Visible ASCII only: base64url (the suggested encoding) fits, control characters and spaces do not.
_WALLET_NONCE: Final = re.compile(rf"[\x21-\x7e]{{1,{WALLET_NONCE_MAX_CHARS}}}")
MAX_REQUEST_CHARS: Final = 64 * 1024
CLOCK_SKEW_S: Final = 60
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})
_DNS_NAME: Final = re.compile(
    r"(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
_SOLE_KEY_SOURCE: Final = {"did": ("x5c", "x5u", "jwk", "jku"), "x509": ("kid", "x5u", "jwk", "jku")}


class RequestObjectError(ValueError):
    """A Request Object that is unsigned, tampered, signed by another key or malformed."""


def client_id_for(jwk: Mapping[str, Any]) -> str:
    """``decentralized_identifier:did:key:z6Mk…`` for an Ed25519 JWK (private or public)."""
    try:
        return CLIENT_ID_PREFIX + did_key.from_jwk(jose.public_jwk(jwk))
    except (did_key.DidKeyError, jose.JoseFailure) as exc:
        raise RequestObjectError("a signing client is identified by an Ed25519 did:key") from exc


@dataclass(frozen=True, slots=True)
class RequestSigner:
    """How a verifier signs its Request Objects: its ``client_id``, its private key and the JWS
    header that tells a wallet where the key comes from (``kid`` for a did:key, ``x5c`` for a
    certificate). Build one with :meth:`did_key` or :meth:`x509`."""

    client_id: str
    jwk: Mapping[str, Any] = field(repr=False)  # private
    header: Mapping[str, Any]
    # A certificate chain's common validity period (Unix seconds, inclusive); None for a did:key.
    valid: tuple[int, int] | None = None

    @property
    def prefix(self) -> str:
        """The Client Identifier prefix (``decentralized_identifier``, ``x509_san_dns``, ``x509_hash``)."""
        return self.client_id.partition(":")[0]

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    def check_valid(self, when: int) -> None:
        """Refuse to sign at ``when`` (Unix seconds) if a certificate of the chain is not valid
        then: a wallet would refuse the Request Object."""
        if self.valid is None:
            return
        start, end = self.valid
        if when > end:
            raise RequestObjectError(f"the verifier certificate chain expired at {_utc(end)}; renew it")
        if when < start:
            raise RequestObjectError(f"the verifier certificate chain is not valid before {_utc(start)}")

    @classmethod
    def did_key(cls, jwk: Mapping[str, Any]) -> RequestSigner:
        """Sign as ``decentralized_identifier:<did:key>`` with a private Ed25519 JWK."""
        client_id = client_id_for(jwk)
        kid = did_key.verification_method_id(client_id[len(CLIENT_ID_PREFIX) :])
        return cls(client_id, jwk, {"typ": TYP, "alg": SIGNING_ALG, "kid": kid})

    @classmethod
    def x509(
        cls,
        jwk: Mapping[str, Any],
        chain: Sequence[x509.Certificate],
        *,
        prefix: str = X509_SAN_DNS_PREFIX[:-1],
        dns_name: str | None = None,
        now: int,
    ) -> RequestSigner:
        """Sign as ``x509_san_dns:<dns_name>`` (default: the leaf's first DNS name) or
        ``x509_hash:<leaf hash>`` with the private JWK (P-256 or Ed25519) of ``chain[0]``.

        ``chain`` is the leaf and then its intermediates, each issued by the next (the root may be
        left out: wallets hold it). Everything a wallet would refuse is refused here, when the
        service starts: a key that is not the leaf's, a broken chain, a leaf whose key usage
        forbids signing, a ``dns_name`` the leaf does not carry, chains over the x5c limits, a
        certificate that is not valid at ``now`` (Unix seconds).
        """
        if prefix not in CLIENT_ID_PREFIXES[1:]:
            raise RequestObjectError(
                f"an X.509 client_id prefix is x509_san_dns or x509_hash, not {prefix!r}"
            )
        if not chain or len(chain) > X5C_MAX_CERTS:
            raise RequestObjectError(f"a certificate chain holds 1 to {X5C_MAX_CERTS} certificates")
        ders = [c.public_bytes(Encoding.DER) for c in chain]
        x5c = [base64.b64encode(der).decode("ascii") for der in ders]
        if any(len(entry) > X5C_MAX_CERT_CHARS for entry in x5c):
            raise RequestObjectError(f"a certificate is over {X5C_MAX_CERT_CHARS} base64 characters")
        leaf = chain[0]
        try:
            key = jose.load_key(jwk, cache=False)
            leaf_jwk = jose.jwk_from_public_key(leaf.public_key())
        except jose.JoseFailure as exc:
            raise RequestObjectError(f"the verifier certificate's key: {exc}") from exc
        if not key.is_private or dict(key.as_dict(private=False)) != leaf_jwk:
            raise RequestObjectError("the private key is not the key of the verifier certificate")
        for cert, issuer in itertools.pairwise(chain):
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature) as exc:
                raise RequestObjectError(
                    f"{cert.subject.rfc4514_string()!r} is not issued by the next certificate of the chain"
                ) from exc
        try:
            _signature_usable(leaf.extensions.get_extension_for_class(x509.KeyUsage).value)
        except x509.ExtensionNotFound:
            pass
        except ValueError as exc:
            raise RequestObjectError(str(exc)) from exc
        if prefix == X509_HASH_PREFIX[:-1]:
            client_id = X509_HASH_PREFIX + x509_hash(ders[0])
        else:
            names = _dns_names(leaf)
            name = (dns_name or (names[0] if names else "")).lower()
            if name not in names:
                raise RequestObjectError(
                    f"the verifier certificate has no DNS subject alternative name {name!r}"
                    if name
                    else "an x509_san_dns verifier needs a certificate with a DNS subject alternative name"
                )
            if not is_dns_name(name):
                raise RequestObjectError(f"{name!r} is not a DNS name a wallet accepts")
            client_id = X509_SAN_DNS_PREFIX + name
        valid = (
            max(int(c.not_valid_before_utc.timestamp()) for c in chain),
            min(int(c.not_valid_after_utc.timestamp()) for c in chain),
        )
        signer = cls(client_id, jwk, {"typ": TYP, "alg": jose.default_alg(key), "x5c": x5c}, valid)
        signer.check_valid(now)
        return signer


def sign_request(params: Mapping[str, Any], signer: RequestSigner, *, iat: int, exp: int) -> str:
    """The Request Object JWS for Authorization Request ``params`` (which hold ``client_id``)."""
    if params.get("client_id") != signer.client_id:
        raise RequestObjectError("client_id of the request does not name the signing key")
    if exp <= iat:
        raise RequestObjectError("a request object must expire after it is issued")
    signer.check_valid(iat)
    payload = {**params, "iss": signer.client_id, "aud": SELF_ISSUED_AUD, "iat": iat, "exp": exp}
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return jose.sign_compact(signer.header, body, signer.jwk)


def _utc(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_dns_name(value: str) -> bool:
    """Whether ``value`` is a DNS name an ``x509_san_dns`` Client Identifier may carry (no
    wildcards, no IP address literals, any case). A top-level label is never all digits (RFC
    3696 section 2), which is what tells ``10.0.0.1`` from a name."""
    name = value.lower()
    return _DNS_NAME.fullmatch(name) is not None and not name.rsplit(".", 1)[-1].isdigit()


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


def x509_hash(der: bytes) -> str:
    """The ``x509_hash`` Client Identifier value of a DER certificate: base64url SHA-256."""
    return jose.b64u_encode(hashlib.sha256(der).digest())


def load_trust_anchors(pem: str | bytes) -> list[x509.Certificate]:
    """The CA certificates in a PEM text (one or more), for verifying x509 verifiers.

    Each must be a CA certificate (basicConstraints ``cA``); expiry is judged when a request is
    verified, as it is for every certificate of the chain.
    """
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise RequestObjectError("no PEM certificate found")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise RequestObjectError("trust anchors must be PEM certificates") from exc
    for cert in certs:
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except (x509.ExtensionNotFound, ValueError):
            is_ca = False
        if not is_ca:
            raise RequestObjectError(
                f"trust anchor {cert.subject.rfc4514_string()!r} is not a CA certificate"
            )
    return certs


def _reject_other_key_sources(header: Mapping[str, Any], kind: str) -> None:
    for name in _SOLE_KEY_SOURCE[kind]:
        if name in header:
            source = "kid (a did:key)" if kind == "did" else "x5c"
            raise RequestObjectError(f"{name} is refused in this request object: its key comes from {source}")


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


def _parse_x5c(value: Any) -> list[tuple[bytes, x509.Certificate]]:
    """``x5c`` (RFC 7515 section 4.1.6): standard base64 DER certificates, leaf first, within limits."""
    if not isinstance(value, list) or not value:
        raise RequestObjectError("an x509 client must send x5c: a non-empty array of certificates")
    if len(value) > X5C_MAX_CERTS:
        raise RequestObjectError(f"x5c holds more than {X5C_MAX_CERTS} certificates")
    chain = []
    for entry in value:
        if not isinstance(entry, str) or len(entry) > X5C_MAX_CERT_CHARS:
            raise RequestObjectError(
                f"each x5c entry must be a string of at most {X5C_MAX_CERT_CHARS} characters"
            )
        try:
            der = base64.b64decode(entry, validate=True)  # standard alphabet: base64url is refused
            chain.append((der, x509.load_der_x509_certificate(der)))
        except (binascii.Error, ValueError) as exc:
            raise RequestObjectError("an x5c entry is not a base64 DER certificate") from exc
    return chain


def _signature_usable(usage: x509.KeyUsage | None) -> None:
    # a leaf that states its key usage must allow signatures (and must not be a certificate signer)
    if usage is not None and (not usage.digital_signature or usage.key_cert_sign):
        raise ValueError("the leaf certificate's key usage does not allow signing requests")


def _dns_names(cert: x509.Certificate) -> list[str]:
    """The certificate's dNSName subject alternative names, lowercased, in order."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in names.get_values_for_type(x509.DNSName)]


# Web-PKI rules, except what request-signing certificates need not have: a SAN (x509_hash) or a TLS
# extended key usage. Everything a relying party relies on stays: validity, signatures,
# basicConstraints and keyCertSign on CAs, path length, name constraints, and key usage.
_EE_POLICY: Final = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(
        x509.KeyUsage, Criticality.AGNOSTIC, lambda _policy, _cert, usage: _signature_usable(usage)
    )
)
_CA_POLICY: Final = ExtensionPolicy.webpki_defaults_ca()


def _x509_key(
    header: Mapping[str, Any],
    prefix: str,
    value: str,
    anchors: Sequence[x509.Certificate],
    now: int,
    crls: revocation.CrlCache | None,
) -> jose.Key:
    """The leaf key of a validated ``x5c`` chain that the ``x509_san_dns``/``x509_hash`` value names."""
    _reject_other_key_sources(header, "x509")
    if not anchors:
        raise RequestObjectError(
            f"{prefix} verifiers need trust anchors: this wallet trusts no CA certificate yet"
        )
    chain = _parse_x5c(header.get("x5c"))
    leaf_der, leaf = chain[0]
    public = leaf.public_key()
    if isinstance(public, EllipticCurvePublicKey) and isinstance(public.curve, SECP256R1):
        algs: tuple[str, ...] = ("ES256",)
    elif isinstance(public, Ed25519PublicKey):
        algs = ("EdDSA", "Ed25519")
    else:
        raise RequestObjectError("the leaf certificate key must be P-256 (ES256) or Ed25519 (EdDSA)")
    if header.get("alg") not in algs:
        raise RequestObjectError(f"alg {header.get('alg')!r} does not fit the leaf certificate key")
    if prefix == X509_SAN_DNS_PREFIX[:-1]:
        if value.lower() not in _dns_names(leaf):
            raise RequestObjectError(
                f"{value!r} is not a DNS subject alternative name of the leaf certificate"
            )
    elif not hmac.compare_digest(value.encode("ascii", "replace"), x509_hash(leaf_der).encode("ascii")):
        raise RequestObjectError("x509_hash does not match the leaf certificate")
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
        raise RequestObjectError("the leaf certificate is expired or not yet valid")
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(when)
        .max_chain_depth(X5C_MAX_CERTS)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        path = verifier.verify(leaf, [cert for _, cert in chain[1:]]).chain
    except VerificationError as exc:
        raise RequestObjectError(f"x5c does not validate to a trust anchor: {exc}") from exc
    if crls is not None:
        try:
            revocation.check_path(path, crls, when)
        except revocation.RevocationError as exc:
            raise RequestObjectError(f"x5c: {exc}") from exc
    try:
        return jose.load_key(jose.jwk_from_public_key(public), cache=False)
    except jose.JoseFailure as exc:  # pragma: no cover - the key type was checked above
        raise RequestObjectError(f"leaf certificate key unusable: {exc}") from exc


def _client_id_prefix(token: str) -> tuple[str, str]:
    """Prefix and value of the payload's ``client_id``, read before the signature is checked: it
    only picks how the key is found, and the signature then covers these very bytes."""
    try:
        payload = json.loads(jose.b64u_decode(token.split(".")[1]))
    except (ValueError, RecursionError, jose.JoseFailure) as exc:
        raise RequestObjectError("request object payload is not base64url JSON") from exc
    client_id = payload.get("client_id") if isinstance(payload, dict) else None
    if not isinstance(client_id, str) or ":" not in client_id:
        raise RequestObjectError("request object has no client_id with a Client Identifier prefix")
    prefix, _, value = client_id.partition(":")
    if prefix not in CLIENT_ID_PREFIXES:
        raise RequestObjectError(
            f"client_id prefix {prefix!r} is not supported (only {', '.join(CLIENT_ID_PREFIXES)})"
        )
    if prefix == X509_SAN_DNS_PREFIX[:-1] and not is_dns_name(value):
        raise RequestObjectError("an x509_san_dns client_id must be a DNS name")
    return prefix, value


def _check_response_uri(value: Any) -> str:
    """The host of a usable direct_post ``response_uri``."""
    if not isinstance(value, str) or len(value) > 2048:
        raise RequestObjectError("response_uri is required for response_mode direct_post")
    url = urllib.parse.urlsplit(value)
    loopback = url.scheme == "http" and url.hostname in _LOOPBACK_HOSTS
    if not (url.scheme == "https" or loopback) or not url.hostname or url.fragment:
        raise RequestObjectError("response_uri must be an https URL (http only on loopback)")
    return url.hostname


def verify_request(
    token: str,
    *,
    now: int,
    trust_anchors: Sequence[x509.Certificate] = (),
    expected_client_id: str | None = None,
    expected_wallet_nonce: str | None = None,
    crls: revocation.CrlCache | None = None,
) -> dict[str, Any]:
    """Verify a signed Request Object and return its parameters.

    Checks, in order: compact JWS with ``typ`` ``oauth-authz-req+jwt``; a supported
    ``client_id`` prefix, which picks the key: ``decentralized_identifier`` from ``kid`` (a did:key
    verification method naming the same DID), ``x509_san_dns``/``x509_hash`` from the leaf of an
    ``x5c`` chain that validates to ``trust_anchors`` at ``now`` and carries the DNS name / has
    the hash, and, given ``crls``, whose certificates are not revoked (:mod:`identity.revocation`);
    the signature (joserfc; EdDSA for Ed25519, ES256 for P-256 keys); when given, the
    ``client_id`` of the Authorization Request that carried ``request_uri`` (RFC 9101 section 5);
    when the wallet POSTed a ``wallet_nonce``, the same value in ``wallet_nonce``; ``iss`` (if
    present) = ``client_id``; ``aud`` = ``https://self-issued.me/v2``; ``iat``/``exp`` against
    ``now`` (60 s skew); no nested ``request``/``request_uri``; ``response_type`` ``vp_token``,
    ``response_mode`` ``direct_post`` with an https ``response_uri`` (whose host, for
    ``x509_san_dns``, is the client's DNS name), ``nonce`` and ``state``.
    """
    if not isinstance(token, str) or len(token) > MAX_REQUEST_CHARS or token.count(".") != 2:
        raise RequestObjectError("request object is not a compact JWS (unsigned requests are refused)")
    header = _unverified_header(token)
    if header.get("typ") != TYP:
        raise RequestObjectError(f"request object typ must be {TYP}")
    prefix, value = _client_id_prefix(token)
    if prefix == CLIENT_ID_PREFIX[:-1]:
        _reject_other_key_sources(header, "did")
        did, jwk = _key_from_kid(header.get("kid"))
        if value != did:
            raise RequestObjectError("client_id does not name the key that signed the request")
        key = jose.load_key(jwk, cache=False)
    else:
        key = _x509_key(header, prefix, value, trust_anchors, now, crls)
    try:
        # the whole token is already bounded by MAX_REQUEST_CHARS; x5c makes headers large
        _, payload_bytes = jose.verify_compact(token, key, header_limit=MAX_REQUEST_CHARS)
    except jose.JoseFailure as exc:
        raise RequestObjectError(f"request object signature invalid ({exc.kind})") from exc
    params: dict[str, Any] = json.loads(payload_bytes)  # the bytes _client_id_prefix parsed: a JSON object
    client_id = params["client_id"]
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
    host = _check_response_uri(params.get("response_uri"))
    # the wallet keeps no list of trusted client identifiers, so the answer must go to the name
    # the certificate vouches for (OpenID4VP 1.0 section 5.9.3)
    if prefix == X509_SAN_DNS_PREFIX[:-1] and host != value.lower():
        raise RequestObjectError("response_uri host is not the x509_san_dns name of the client")
    for name in ("nonce", "state"):
        got = params.get(name)
        if not isinstance(got, str) or not got or len(got) > 256:
            raise RequestObjectError(f"request object has no usable {name}")
    return params
