"""CRL checking of X.509 verifier chains (identity.revocation). Every certificate and CRL is made
here; CRLs are served from a dict standing in for the CA's web server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity import revocation
from identity.revocation import CrlCache, RevocationError, check_path

from .x509_support import DAY, Leaf, Pki, make_cert

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = T0 + DAY / 2  # inside every CRL's validity below
BASE = "http://pki.example"
PKI = Pki(T0, "verifier.example", crl_base=BASE)


class Server:
    """The CA's web server: CRLs by URL, and a log of what was fetched."""

    def __init__(self, **crls: x509.CertificateRevocationList | bytes) -> None:
        self.files: dict[str, bytes] = {}
        self.fetched: list[str] = []
        for name, crl in crls.items():
            self.put(name, crl)

    def put(self, name: str, crl: x509.CertificateRevocationList | bytes) -> None:
        data = crl if isinstance(crl, bytes) else crl.public_bytes(serialization.Encoding.DER)
        self.files[f"{BASE}/{name}.crl"] = data

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.files:
            raise RevocationError("HTTP 404")
        return self.files[url]


def _path(leaf: Leaf) -> list[x509.Certificate]:
    return [leaf.cert, PKI.intermediate, PKI.root]


def _server(**override: x509.CertificateRevocationList | bytes) -> Server:
    return Server(**{"root": PKI.crl(by="root"), "int": PKI.crl(), **override})


def test_a_chain_whose_crls_list_nothing_passes_and_crls_are_cached() -> None:
    leaf = PKI.leaf()
    server = _server()
    cache = CrlCache(server)
    check_path(_path(leaf), cache, NOW)
    assert server.fetched == [f"{BASE}/int.crl", f"{BASE}/root.crl"]
    check_path(_path(PKI.leaf()), cache, NOW + DAY)  # another leaf, same CAs: nothing fetched
    assert len(server.fetched) == 2
    # past its nextUpdate a CRL is fetched again (and must then be a current one)
    later = T0 + 8 * DAY
    with pytest.raises(RevocationError, match="out of date"):
        check_path(_path(leaf), cache, later)
    server.put("int", PKI.crl(this_update=later - DAY, next_update=later + DAY))
    server.put("root", PKI.crl(by="root", this_update=later - DAY, next_update=later + DAY))
    check_path(_path(leaf), cache, later)
    assert server.fetched[2:] == [f"{BASE}/int.crl", f"{BASE}/int.crl", f"{BASE}/root.crl"]


def test_a_revoked_leaf_or_intermediate_is_refused() -> None:
    leaf, other = PKI.leaf(), PKI.leaf()
    with pytest.raises(RevocationError, match="'CN=verifier' is revoked"):
        check_path(_path(leaf), CrlCache(_server(int=PKI.crl([other.cert, leaf.cert]))), NOW)
    check_path(_path(other), CrlCache(_server(int=PKI.crl([leaf.cert]))), NOW)
    with pytest.raises(RevocationError, match="Intermediate' is revoked"):
        check_path(_path(other), CrlCache(_server(root=PKI.crl([PKI.intermediate], by="root"))), NOW)


def test_certificates_without_http_distribution_points_are_not_checked() -> None:
    plain = Pki(T0, "verifier.example")  # no CRL distribution points at all
    server = Server()
    check_path([plain.leaf().cert, plain.intermediate, plain.root], CrlCache(server), NOW)
    ldap = plain.leaf(crl_urls=["ldap://pki.example/cn=crl"])
    assert revocation.distribution_points(ldap.cert) == []
    check_path([ldap.cert, plain.intermediate, plain.root], CrlCache(server), NOW)
    assert server.fetched == []


def test_the_next_distribution_point_is_tried_and_pem_is_accepted() -> None:
    leaf = PKI.leaf(crl_urls=[f"{BASE}/missing.crl", f"{BASE}/int.crl"])
    server = _server(int=PKI.crl().public_bytes(serialization.Encoding.PEM))
    check_path(_path(leaf), CrlCache(server), NOW)
    assert server.fetched[:2] == [f"{BASE}/missing.crl", f"{BASE}/int.crl"]


OTHER = Pki(T0, "verifier.example", "Other Root", crl_base=BASE)
NOT_A_CRL_SIGNER_KEY = ec.generate_private_key(ec.SECP256R1())
NOT_A_CRL_SIGNER = make_cert(
    NOT_A_CRL_SIGNER_KEY,
    "Signs No CRLs",
    (PKI.root_key, PKI.root.subject),
    ca=True,
    valid=PKI.valid,
    crl_sign=False,
)


def _idp(**flags: bool) -> tuple[x509.ExtensionType, bool]:
    values = {
        "only_contains_user_certs": False,
        "only_contains_ca_certs": False,
        "indirect_crl": False,
        "only_contains_attribute_certs": False,
        **flags,
    }
    return x509.IssuingDistributionPoint(None, None, only_some_reasons=None, **values), True


UNKNOWN: list[tuple[Callable[[], x509.CertificateRevocationList | bytes], str]] = [
    (lambda: PKI.crl(signer=OTHER.int_key), "signature invalid"),
    (lambda: OTHER.crl(), "issued by another CA"),
    (lambda: PKI.crl(this_update=NOW + DAY / 4), "issued in the future"),
    (lambda: PKI.crl(this_update=T0 - 3 * DAY, next_update=NOW - DAY / 4), "out of date"),
    (lambda: PKI.crl(extensions=[(x509.DeltaCRLIndicator(1), True)]), "delta CRLs"),
    (
        lambda: PKI.crl(
            extensions=[
                (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x05\x00"), True)
            ]
        ),
        "unsupported critical extension 1.3.6.1.4.1.55555.2",
    ),
    (lambda: PKI.crl(extensions=[_idp(indirect_crl=True)]), "partial or indirect"),
    (lambda: PKI.crl(extensions=[_idp(only_contains_ca_certs=True)]), "does not cover this kind"),
    (lambda: b"\x30\x03\x02\x01\x00", "not a DER or PEM CRL"),
    (lambda: b"\x00" * (revocation.CRL_MAX_BYTES + 1), "over 1048576 bytes"),
]


@pytest.mark.parametrize(("crl", "message"), UNKNOWN)
def test_an_unusable_crl_leaves_the_status_unknown_and_refuses(
    crl: Callable[[], x509.CertificateRevocationList | bytes], message: str
) -> None:
    with pytest.raises(RevocationError, match=f"status of 'CN=verifier' unknown .*{message}"):
        check_path(_path(PKI.leaf()), CrlCache(_server(int=crl())), NOW)


def test_crl_limits_and_scopes_at_the_edge() -> None:
    # a CRL of exactly CRL_MAX_BYTES still parses (padded with a non-critical extension)
    base = len(PKI.crl().public_bytes(serialization.Encoding.DER))
    oid = x509.ObjectIdentifier("1.3.6.1.4.1.55555.3")
    size, pad = 0, revocation.CRL_MAX_BYTES - base - 16
    for _ in range(8):
        big = PKI.crl(extensions=[(x509.UnrecognizedExtension(oid, b"\x04" + bytes(pad)), False)])
        size = len(big.public_bytes(serialization.Encoding.DER))
        if size == revocation.CRL_MAX_BYTES:
            break
        pad += revocation.CRL_MAX_BYTES - size
    assert size == revocation.CRL_MAX_BYTES
    check_path(_path(PKI.leaf()), CrlCache(_server(int=big)), NOW)
    # scopes that do cover the certificate
    check_path(
        _path(PKI.leaf()),
        CrlCache(_server(int=PKI.crl(extensions=[_idp(only_contains_user_certs=True)]))),
        NOW,
    )
    ca_only = PKI.crl(by="root", extensions=[_idp(only_contains_ca_certs=True)])
    check_path(_path(PKI.leaf()), CrlCache(_server(root=ca_only)), NOW)


def test_an_issuer_whose_key_usage_forbids_crl_signing_cannot_vouch() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_cert(
        key, "verifier", (NOT_A_CRL_SIGNER_KEY, NOT_A_CRL_SIGNER.subject), ca=False, valid=PKI.valid,
        crl_urls=[f"{BASE}/nocrl.crl"],
    )  # fmt: skip
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(NOT_A_CRL_SIGNER.subject)
        .last_update(T0)
        .next_update(T0 + DAY)
        .sign(NOT_A_CRL_SIGNER_KEY, hashes.SHA256())
    )
    server = Server(nocrl=crl)
    with pytest.raises(RevocationError, match="does not allow signing CRLs"):
        check_path([leaf, NOT_A_CRL_SIGNER, PKI.root], CrlCache(server), NOW)


def test_the_cache_keeps_at_most_its_limit() -> None:
    server = _server()
    for k in range(revocation.CRL_CACHE_MAX + 1):
        server.files[f"{BASE}/copy{k}.crl"] = server.files[f"{BASE}/int.crl"]
    cache = CrlCache(server)
    for k in range(revocation.CRL_CACHE_MAX + 1):
        cache.get(f"{BASE}/copy{k}.crl", NOW)
    cache.get(f"{BASE}/copy{revocation.CRL_CACHE_MAX}.crl", NOW)  # the newest is still there
    assert len(server.fetched) == revocation.CRL_CACHE_MAX + 1
    cache.get(f"{BASE}/copy0.crl", NOW)  # the oldest was dropped
    assert len(server.fetched) == revocation.CRL_CACHE_MAX + 2
