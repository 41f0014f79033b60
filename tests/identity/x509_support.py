"""A test PKI for X.509 verifiers (OpenID4VP ``x509_san_dns`` / ``x509_hash``): a root and an
intermediate CA that issue verifier leaves. Every certificate and key is made here, at test time."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from identity import jose
from identity import request_object as ro

DAY = dt.timedelta(days=1)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def b64(cert: x509.Certificate) -> str:
    return base64.b64encode(der(cert)).decode("ascii")


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def make_cert(
    key: PrivateKey,
    cn: str,
    issuer: tuple[PrivateKey, x509.Name] | None = None,
    *,
    ca: bool,
    valid: tuple[dt.datetime, dt.datetime],
    san: Sequence[str] = (),
    key_usage: bool | None = True,
    padding: bytes = b"",
    crl_urls: Sequence[str] = (),
    crl_sign: bool = True,
) -> x509.Certificate:
    """A certificate for ``key`` signed by ``issuer`` (self-signed without one)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer, issuer_name = issuer or (key, name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if key_usage is not None:
        # CAs sign certificates; leaves sign requests (key_usage=False: a leaf that may not sign)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca and key_usage,
                content_commitment=False,
                key_encipherment=not ca and not key_usage,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca and crl_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False
        )
    if crl_urls:
        points = [
            x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in crl_urls
        ]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    if padding:  # an unknown non-critical extension: only makes the certificate bigger
        oid = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, padding), critical=False)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


@dataclass
class Leaf:
    jwk: dict[str, Any]  # private, for jose.sign_compact
    cert: x509.Certificate

    @property
    def alg(self) -> str:
        return "EdDSA" if self.jwk["kty"] == "OKP" else "ES256"

    @property
    def hash_client_id(self) -> str:
        return ro.X509_HASH_PREFIX + ro.x509_hash(der(self.cert))


class Pki:
    """A root CA and an intermediate CA (both P-256), valid around ``t0``, that issue verifier
    leaves for ``host``."""

    def __init__(
        self, t0: dt.datetime, host: str, cn: str = "Civitas Test Root", *, crl_base: str | None = None
    ) -> None:
        self.valid = (t0 - DAY, t0 + 365 * DAY)
        self.host = host
        # with crl_base, the intermediate points at the root's CRL and leaves at the intermediate's
        self.crl_urls = {"root": f"{crl_base}/root.crl", "int": f"{crl_base}/int.crl"} if crl_base else {}
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = make_cert(self.root_key, cn, ca=True, valid=self.valid)
        self.int_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = make_cert(
            self.int_key,
            f"{cn} Intermediate",
            (self.root_key, self.root.subject),
            ca=True,
            valid=self.valid,
            crl_urls=[self.crl_urls["root"]] if crl_base else [],
        )

    @property
    def issuer(self) -> tuple[PrivateKey, x509.Name]:
        """The intermediate, as the issuer of leaves."""
        return self.int_key, self.intermediate.subject

    def leaf(self, kty: str = "EC", *, san: Sequence[str] | None = None, **options: Any) -> Leaf:
        jwk = jose.generate_ec_p256() if kty == "EC" else jose.generate_ed25519()
        key = jose.load_key(jwk, cache=False).private_key
        assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        options.setdefault("valid", self.valid)
        options.setdefault("crl_urls", [self.crl_urls["int"]] if self.crl_urls else [])
        san = (self.host,) if san is None else san
        return Leaf(jwk, make_cert(key, "verifier", self.issuer, ca=False, san=san, **options))

    def x5c(self, leaf: Leaf, *extra: x509.Certificate) -> list[str]:
        return [b64(leaf.cert), b64(self.intermediate), *(b64(c) for c in extra)]

    def chain(self, leaf: Leaf) -> list[x509.Certificate]:
        return [leaf.cert, self.intermediate]

    def crl(
        self,
        revoked: Sequence[x509.Certificate] = (),
        *,
        by: str = "int",
        signer: PrivateKey | None = None,
        this_update: dt.datetime | None = None,
        next_update: dt.datetime | None = None,
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> x509.CertificateRevocationList:
        """A CRL of the intermediate (``by="int"``) or the root listing ``revoked``, current at
        ``t0`` unless told otherwise, signed by that CA (or by ``signer``)."""
        key, name = (
            (self.int_key, self.intermediate.subject) if by == "int" else (self.root_key, self.root.subject)
        )
        t0 = self.valid[0] + DAY
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(name)
            .last_update(this_update or t0 - DAY / 2)
            .next_update(next_update or t0 + 7 * DAY)
        )
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(t0 - DAY / 2)
                .build()
            )
        for value, critical in extensions:
            builder = builder.add_extension(value, critical)
        return builder.sign(signer or key, hashes.SHA256())

    def certify(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        """What a CA does with a certificate signing request: check its signature, then issue a
        leaf for its key with its subject and its requested extensions."""
        assert csr.is_signature_valid
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.intermediate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.valid[0])
            .not_valid_after(self.valid[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.int_key.public_key()), critical=False
            )
        )
        for ext in csr.extensions:
            builder = builder.add_extension(ext.value, ext.critical)
        return builder.sign(self.int_key, hashes.SHA256())
