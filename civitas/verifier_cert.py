"""The verifier's X.509 identity (OpenID4VP ``x509_san_dns`` / ``x509_hash`` Client Identifiers).

Wallets that trust a PKI rather than DIDs want a verifier to sign its Request Objects with a
certificate. The operator makes a key and a certificate signing request (``civitas keys
verifier-csr``), has a CA issue the certificate for the public host, and points
``CIVITAS_VERIFIER_X509_CHAIN`` at the PEM chain (leaf first, then intermediates). The service then
signs as ``x509_san_dns:<public_url host>`` (or ``x509_hash:`` with
``CIVITAS_VERIFIER_CLIENT_ID_PREFIX``); without a chain it signs as its did:key. Every check a
wallet would make of the chain and key is made when the service starts.

Revocation and expiry are checked then too. Each certificate of the chain whose issuer the chain
also holds is checked against the CRLs it names, as a wallet would: a revoked one stops the
service; a CRL the service cannot fetch or use is only logged (wallets, on another network, may
reach it). A chain that expires within :data:`RENEW_WITHIN_S` is logged as a warning, and once it
has expired the service refuses new presentation requests (503) until it is renewed.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, OKPKey

from civitas.keys import write_private
from civitas.settings import Settings
from identity import request_object, revocation

__all__ = [
    "KEY_TYPES",
    "RENEW_WITHIN_S",
    "VerifierCertificateError",
    "VerifierCheck",
    "certificate_request",
    "check",
    "key_path",
    "load_signer",
]

KEY_TYPES: Final = ("p256", "ed25519")
RENEW_WITHIN_S: Final = 30 * 86_400
CRL_FETCH_TIMEOUT_S: Final = 5.0
_PEM_MAX_BYTES: Final = 64 * 1024

log = logging.getLogger("civitas.verifier_cert")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class VerifierCertificateError(ValueError):
    """The verifier's certificate chain or key is missing, unreadable or unusable."""


def key_path(settings: Settings) -> Path:
    """Where the verifier's certificate key lives: ``CIVITAS_VERIFIER_X509_KEY`` or the data dir."""
    return settings.verifier_x509_key or settings.data_dir / "keys" / "verifier-x509-key.pem"


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerifierCertificateError(f"cannot read the verifier {what} {path}: {exc.strerror}") from exc
    if len(data) > _PEM_MAX_BYTES:
        raise VerifierCertificateError(f"the verifier {what} {path} is over {_PEM_MAX_BYTES} bytes")
    return data


def _load_key(path: Path) -> PrivateKey:
    data = _read(path, "key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise VerifierCertificateError(f"{path} is not an unencrypted PEM private key") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    raise VerifierCertificateError(f"the verifier key {path} must be P-256 or Ed25519")


@dataclass(frozen=True, slots=True)
class VerifierCheck:
    """What :func:`check` found: the signer, when the chain expires, the certificates a current
    CRL shows are not revoked, and why the others' revocation status could not be established."""

    signer: request_object.RequestSigner
    expires: dt.datetime
    not_revoked: tuple[str, ...]
    unknown_status: tuple[str, ...]


def check(settings: Settings, *, now: int, fetch: revocation.Fetch | None = None) -> VerifierCheck | None:
    """Every check of the configured chain and key; None without a chain (did:key). Raises
    :class:`VerifierCertificateError` for what a wallet would refuse, a revoked certificate included.

    ``now`` is Unix seconds; ``fetch`` gets a CRL by URL (default: HTTP with a short timeout).
    """
    if settings.verifier_x509_chain is None:
        return None
    data = _read(settings.verifier_x509_chain, "certificate chain")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise VerifierCertificateError(
            f"{settings.verifier_x509_chain} is not a PEM certificate chain"
        ) from exc
    key = _load_key(key_path(settings))
    jwk = ECKey.import_key(key) if isinstance(key, ec.EllipticCurvePrivateKey) else OKPKey.import_key(key)
    host = urllib.parse.urlsplit(settings.issuer).hostname
    try:
        signer = request_object.RequestSigner.x509(
            jwk.as_dict(private=True),
            chain,
            prefix=settings.verifier_client_id_prefix,
            dns_name=host,
            now=now,
        )
    except request_object.RequestObjectError as exc:
        raise VerifierCertificateError(f"verifier certificate: {exc}") from exc
    not_revoked, unknown = _revocation(chain, now, fetch)
    return VerifierCheck(signer, min(c.not_valid_after_utc for c in chain), not_revoked, unknown)


def load_signer(
    settings: Settings, *, now: int, fetch: revocation.Fetch | None = None
) -> request_object.RequestSigner | None:
    """The X.509 Request Object signer the settings configure (see :func:`check`); logs what an
    operator should act on."""
    found = check(settings, now=now, fetch=fetch)
    if found is None:
        return None
    for problem in found.unknown_status:
        log.warning("verifier certificate: %s; wallets that cannot fetch it either will refuse", problem)
    if found.expires.timestamp() - now < RENEW_WITHIN_S:
        log.warning(
            "the verifier certificate chain expires at %s: renew it (civitas keys verifier-csr)",
            found.expires.isoformat(),
        )
    return found.signer


def _revocation(
    chain: list[x509.Certificate], now: int, fetch: revocation.Fetch | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Raise on a revoked certificate of the chain; return the subjects of those shown not to be
    revoked, and why the others' status is unknown."""
    pairs = [(c, i) for c, i in itertools.pairwise(chain) if revocation.distribution_points(c)]
    if not pairs:
        return (), ()
    http: httpx.Client | None = None
    if fetch is None:
        http = httpx.Client(timeout=CRL_FETCH_TIMEOUT_S)
        fetch = functools.partial(revocation.http_fetch, http)
    crls = revocation.CrlCache(fetch)
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    good, unknown = [], []
    try:
        for cert, issuer in pairs:
            try:
                revocation.check_path([cert, issuer], crls, when)
                good.append(cert.subject.rfc4514_string())
            except revocation.Revoked as exc:
                raise VerifierCertificateError(f"verifier certificate: {exc}; wallets refuse it") from exc
            except revocation.RevocationError as exc:
                unknown.append(str(exc))
    finally:
        if http is not None:
            http.close()
    return tuple(good), tuple(unknown)


def certificate_request(settings: Settings, dns_name: str, key_type: str = "p256") -> tuple[bytes, bool]:
    """A PEM certificate signing request for ``dns_name`` with the verifier key, which is made
    (0600) when it does not exist yet; returns the CSR and whether the key was made."""
    if key_type not in KEY_TYPES:
        raise VerifierCertificateError(f"key type must be one of {', '.join(KEY_TYPES)}")
    name = dns_name.lower()
    if not request_object.is_dns_name(name):
        raise VerifierCertificateError(f"{dns_name!r} is not a DNS name")
    path = key_path(settings)
    made = not path.exists()
    if made:
        new: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if key_type == "p256"
            else ed25519.Ed25519PrivateKey.generate()
        )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(
            path,
            new.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
    key = _load_key(path)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM), made
