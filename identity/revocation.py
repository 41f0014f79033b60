"""Revocation of X.509 certificates by CRL (RFC 5280 sections 5 and 6.3), for verifier chains.

A wallet about to disclose personal data to an X.509 verifier checks, for every certificate of the
validated path except the trust anchor, the CRL its issuer publishes at the certificate's CRL
distribution points (``http``/``https`` URIs; others are skipped). A certificate without
distribution points is not checked (its CA publishes no CRL). A certificate with them must have
its status proven: a CRL that cannot be fetched, does not parse, is not signed by the issuer, is
out of date or does not cover the certificate refuses the request (hard fail), as does a listed
serial number.

The CRL must be a complete CRL for the issuer (RFC 5280 section 5): issuer name equal to the
certificate's issuer, signature by the issuer's key (whose key usage, when stated, allows
``cRLSign``), ``thisUpdate`` not in the future and ``nextUpdate`` present and not past (60 s skew
each way), no delta CRL, and an issuing distribution point, if any, that neither is indirect nor
covers only some reasons, and whose scope (user or CA certificates) includes the certificate.
No other critical extension is accepted.

:class:`CrlCache` fetches through an injected function (:func:`http_fetch` over an HTTP client) and
keeps each CRL until its ``nextUpdate``, so a verifier's chain costs at most one fetch per CRL and
period. The service checks its own verifier chain the same way when it starts.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

import httpx
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

__all__ = [
    "CRL_CACHE_MAX",
    "CRL_MAX_BYTES",
    "CrlCache",
    "RevocationError",
    "Revoked",
    "check_path",
    "distribution_points",
    "http_fetch",
]

CRL_MAX_BYTES: Final = 1024 * 1024
CRL_CACHE_MAX: Final = 64
SKEW: Final = dt.timedelta(seconds=60)
_ALLOWED_CRITICAL: Final = frozenset({ExtensionOID.ISSUING_DISTRIBUTION_POINT})

Fetch = Callable[[str], bytes]


class RevocationError(ValueError):
    """A certificate is revoked, or its revocation status cannot be established."""


class Revoked(RevocationError):
    """A current CRL of its issuer lists the certificate."""


def http_fetch(http: httpx.Client, url: str) -> bytes:
    """GET a CRL over ``http``, refusing bodies over :data:`CRL_MAX_BYTES` while they stream in."""
    try:
        with http.stream("GET", url, headers={"Accept": "application/pkix-crl"}) as response:
            if response.status_code != 200:
                raise RevocationError(f"HTTP {response.status_code}")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > CRL_MAX_BYTES:
                    raise RevocationError(f"CRL over {CRL_MAX_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise RevocationError(f"fetch failed: {exc}") from exc
    return bytes(data)


def distribution_points(cert: x509.Certificate) -> list[str]:
    """The ``http``/``https`` CRL URIs of ``cert``, in order (empty: no CRL to check)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        if point.relative_name is not None or point.reasons is not None or point.crl_issuer is not None:
            continue  # a partial or indirect CRL: not a complete CRL from this issuer
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
                ("http://", "https://")
            ):
                urls.append(name.value)
    return urls


def _parse(data: bytes) -> x509.CertificateRevocationList:
    if len(data) > CRL_MAX_BYTES:
        raise RevocationError(f"CRL over {CRL_MAX_BYTES} bytes")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise RevocationError("not a DER or PEM CRL") from exc


def _check_crl(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
) -> None:
    """Refuse a CRL that is not a current, complete CRL of ``issuer`` covering ``cert``."""
    if crl.issuer != issuer.subject or cert.issuer != issuer.subject:
        raise RevocationError("CRL issued by another CA")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.crl_sign:
            raise RevocationError("the issuer's key usage does not allow signing CRLs")
    except x509.ExtensionNotFound:
        pass
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise RevocationError("CRL signature invalid")
    if crl.last_update_utc > now + SKEW:
        raise RevocationError("CRL issued in the future")
    if crl.next_update_utc is None or crl.next_update_utc < now - SKEW:
        raise RevocationError("CRL out of date")
    for ext in crl.extensions:
        if ext.oid == ExtensionOID.DELTA_CRL_INDICATOR:
            raise RevocationError("delta CRLs are not supported")
        if ext.critical and ext.oid not in _ALLOWED_CRITICAL:
            raise RevocationError(f"CRL has an unsupported critical extension {ext.oid.dotted_string}")
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return
    if idp.indirect_crl or idp.only_some_reasons is not None or idp.only_contains_attribute_certs:
        raise RevocationError("CRL is partial or indirect")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if (idp.only_contains_user_certs and is_ca) or (idp.only_contains_ca_certs and not is_ca):
        raise RevocationError("CRL does not cover this kind of certificate")


class CrlCache:
    """CRLs by URL, fetched through ``fetch`` and kept until their ``nextUpdate`` (at most
    :data:`CRL_CACHE_MAX`, oldest dropped first). Not thread-safe: one per wallet."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._crls: OrderedDict[str, x509.CertificateRevocationList] = OrderedDict()

    def get(self, url: str, now: dt.datetime) -> x509.CertificateRevocationList:
        crl = self._crls.get(url)
        if crl is not None and crl.next_update_utc is not None and now < crl.next_update_utc:
            return crl
        crl = _parse(self._fetch(url))
        self._crls[url] = crl
        self._crls.move_to_end(url)
        while len(self._crls) > CRL_CACHE_MAX:
            self._crls.popitem(last=False)
        return crl


def _status(cert: x509.Certificate, issuer: x509.Certificate, crls: CrlCache, now: dt.datetime) -> None:
    urls = distribution_points(cert)
    problems = []
    for url in urls:
        try:
            crl = crls.get(url, now)
            _check_crl(crl, cert, issuer, now)
        except RevocationError as exc:
            problems.append(f"{url}: {exc}")
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            raise Revoked(f"certificate {cert.subject.rfc4514_string()!r} is revoked")
        return
    if problems:
        raise RevocationError(
            f"revocation status of {cert.subject.rfc4514_string()!r} unknown ({'; '.join(problems)})"
        )


def check_path(path: Sequence[x509.Certificate], crls: CrlCache, now: dt.datetime) -> None:
    """Check every certificate of a validated ``path`` (leaf first, trust anchor last) against its
    issuer's CRL; raises :class:`RevocationError` when one is revoked or its status is unknown."""
    for cert, issuer in itertools.pairwise(path):
        _status(cert, issuer, crls, now)
