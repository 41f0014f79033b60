"""X.509 verifiers (OpenID4VP 1.0 ``x509_san_dns`` / ``x509_hash``): Request Objects with ``x5c``
headers, validated against the wallet's trust anchors. Every certificate is made here."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import nacl.secret
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from identity import did_key, jose, sdjwt
from identity import request_object as ro
from identity.issuer import make_proof
from identity.wallet import WALLET_METADATA, Wallet, WalletError

from .issuer_support import ISSUER_ID, RAW_CLAIMS, RESIDENT_VCT, FakeClock, make_issuer
from .x509_support import DAY, Leaf, Pki, PrivateKey, b64, der, make_cert, pem

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
T0 = dt.datetime.fromtimestamp(NOW, dt.UTC)
HOST = "verifier.example"
RESPONSE_URI = f"https://{HOST}/response"

_cert = functools.partial(make_cert, valid=(T0 - DAY, T0 + 365 * DAY))


PKI = Pki(T0, HOST)
EC_LEAF = PKI.leaf("EC")
ED_LEAF = PKI.leaf("OKP")
SAN_CLIENT_ID = ro.X509_SAN_DNS_PREFIX + HOST
ANCHORS = [PKI.root]


def _claims(client_id: str = SAN_CLIENT_ID, **override: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "client_id": client_id,
        "iss": client_id,
        "aud": ro.SELF_ISSUED_AUD,
        "iat": NOW,
        "exp": NOW + 300,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": RESPONSE_URI,
        "nonce": "n-0S6_WzA2Mj",
        "state": "s-1",
        "dcql_query": {"credentials": [{"id": "a", "format": "dc+sd-jwt"}]},
        **override,
    }
    return {k: v for k, v in claims.items() if v is not None}


def _sign(
    claims: dict[str, Any],
    leaf: Leaf = EC_LEAF,
    *,
    x5c: Any = "chain",
    signer: dict[str, Any] | None = None,
    **header: Any,
) -> str:
    """A Request Object signed through identity.jose with an x5c header (by default the leaf and
    the intermediate; ``None`` leaves it out)."""
    head = {"typ": ro.TYP, "alg": leaf.alg, "x5c": PKI.x5c(leaf) if x5c == "chain" else x5c, **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jose.sign_compact(head, json.dumps(claims).encode(), signer or leaf.jwk)


def _forged(x5c: Any) -> str:
    """A header joserfc would not sign (x5c not an array of strings), with a junk signature: the
    wallet must refuse it before any signature check."""
    head = jose.b64u_encode(json.dumps({"typ": ro.TYP, "alg": "ES256", "x5c": x5c}).encode())
    return f"{head}.{jose.b64u_encode(json.dumps(_claims()).encode())}.{jose.b64u_encode(bytes(64))}"


def _verify(
    token: str, anchors: Sequence[x509.Certificate] = ANCHORS, *, now: int = NOW, **kwargs: Any
) -> dict[str, Any]:
    return ro.verify_request(token, now=now, trust_anchors=anchors, **kwargs)


# ---------------------------------------------------------------------------------------------
# request_object: what is accepted


def test_x509_san_dns_with_a_p256_leaf() -> None:
    token = _sign(_claims())
    header = json.loads(jose.b64u_decode(token.split(".")[0]))
    assert header["alg"] == "ES256" and base64.b64decode(header["x5c"][0]) == der(EC_LEAF.cert)
    params = _verify(token, expected_client_id=SAN_CLIENT_ID)
    assert params["client_id"] == "x509_san_dns:verifier.example" and params["nonce"] == "n-0S6_WzA2Mj"
    # the root may be sent too; the DNS name matches whatever its case
    assert _verify(_sign(_claims(), x5c=PKI.x5c(EC_LEAF, PKI.root)))["state"] == "s-1"
    upper = ro.X509_SAN_DNS_PREFIX + HOST.upper()
    assert _verify(_sign(_claims(upper, response_uri=f"https://{HOST.upper()}/r")))["client_id"] == upper


def test_x509_hash_with_an_ed25519_leaf() -> None:
    client_id = ED_LEAF.hash_client_id
    assert len(client_id) == len("x509_hash:") + 43
    params = _verify(_sign(_claims(client_id), ED_LEAF), expected_client_id=client_id)
    assert params["client_id"] == client_id
    # x509_hash does not tie the response_uri to a name, and a leaf needs no SAN
    bare = PKI.leaf("OKP", san=())
    other_host = _claims(bare.hash_client_id, response_uri="https://answers.example/r")
    assert _verify(_sign(other_host, bare))["response_uri"] == "https://answers.example/r"
    # RFC 9864's fully specified name of the same algorithm
    assert _verify(_sign(_claims(client_id), ED_LEAF, alg="Ed25519"))


def test_x5c_limits_at_the_edge() -> None:
    # five certificates: leaf, three intermediates, root
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    chain = [PKI.intermediate]
    issuer: tuple[PrivateKey, x509.Name] = (PKI.int_key, PKI.intermediate.subject)
    for i, key in enumerate(keys):
        chain.insert(0, _cert(key, f"Sub CA {i}", issuer, ca=True))
        issuer = (key, chain[0].subject)
    jwk = jose.generate_ec_p256()
    leaf_key = jose.load_key(jwk, cache=False).private_key
    assert isinstance(leaf_key, ec.EllipticCurvePrivateKey)
    deep = Leaf(jwk, _cert(leaf_key, "deep", issuer, ca=False, san=[HOST]))
    five = [b64(deep.cert), *(b64(c) for c in chain)]
    assert len(five) == ro.X5C_MAX_CERTS == 5
    assert _verify(_sign(_claims(), deep, x5c=five))
    with pytest.raises(ro.RequestObjectError, match="more than 5 certificates"):
        _verify(_sign(_claims(), deep, x5c=[*five, b64(PKI.root)]))
    # a leaf of exactly X5C_MAX_CERT_CHARS base64 characters is accepted, one byte more is not
    fitted = {len(b64(leaf.cert)): leaf for leaf in _padded_leaves()}
    edge = fitted[ro.X5C_MAX_CERT_CHARS]
    assert _verify(_sign(_claims(edge.hash_client_id), edge))
    over = next(leaf for n, leaf in fitted.items() if n > ro.X5C_MAX_CERT_CHARS)
    with pytest.raises(ro.RequestObjectError, match="at most 8192 characters"):
        _verify(_sign(_claims(over.hash_client_id), over))


def _padded_leaves() -> list[Leaf]:
    """Leaves around the size limit: 8192 base64 characters are 6142 to 6144 DER bytes (the
    intermediate's ECDSA signature varies by a byte or two, so sizes are found by trying)."""
    target = ro.X5C_MAX_CERT_CHARS // 4 * 3
    issuer = (PKI.int_key, PKI.intermediate.subject)
    leaves: list[Leaf] = []
    pad = target - len(der(PKI.leaf("OKP", san=()).cert))
    for _ in range(60):
        jwk = jose.generate_ed25519()
        key = jose.load_key(jwk, cache=False).private_key
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        leaf = Leaf(jwk, _cert(key, "verifier", issuer, ca=False, padding=b"\0" * pad))
        leaves.append(leaf)
        size = len(der(leaf.cert))
        sizes = {len(b64(x.cert)) for x in leaves}
        if ro.X5C_MAX_CERT_CHARS in sizes and max(sizes) > ro.X5C_MAX_CERT_CHARS:
            return leaves
        # aim at the last byte that still fits, then one past it
        pad += (target - size) if ro.X5C_MAX_CERT_CHARS not in sizes else 2
    raise AssertionError("no certificate of the wanted size")


# ---------------------------------------------------------------------------------------------
# request_object: what is refused

OTHER_PKI = Pki(T0, HOST, "Someone Else's Root")
OTHER_LEAF = OTHER_PKI.leaf("EC")
CA_AS_LEAF = Leaf(jose.generate_ec_p256(), PKI.intermediate)  # its key is not the jwk: alg fits


def _did_header_token() -> str:
    key = jose.generate_ed25519()
    did = ro.client_id_for(key)[len(ro.CLIENT_ID_PREFIX) :]
    head = {
        "typ": ro.TYP,
        "alg": "EdDSA",
        "kid": did_key.verification_method_id(did),
        "x5c": PKI.x5c(EC_LEAF),
    }
    return jose.sign_compact(head, json.dumps(_claims(ro.CLIENT_ID_PREFIX + did)).encode(), key)


def _leaf_with(**options: Any) -> Leaf:
    return PKI.leaf("EC", **options)


EXPIRED = _leaf_with(valid=(T0 - 400 * DAY, T0 - DAY))
NOT_YET = _leaf_with(valid=(T0 + DAY, T0 + 400 * DAY))
NO_SIGNING = _leaf_with(key_usage=False)
P384_KEY = ec.generate_private_key(ec.SECP384R1())
P384_CERT = _cert(P384_KEY, "p384", (PKI.int_key, PKI.intermediate.subject), ca=False, san=[HOST])
EXPIRED_INT_KEY = ec.generate_private_key(ec.SECP256R1())
EXPIRED_INT = _cert(
    EXPIRED_INT_KEY,
    "Old Intermediate",
    (PKI.root_key, PKI.root.subject),
    ca=True,
    valid=(T0 - 400 * DAY, T0 - DAY),
)


def _under_expired_intermediate() -> str:
    jwk = jose.generate_ec_p256()
    key = jose.load_key(jwk, cache=False).private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    leaf = _cert(key, "verifier", (EXPIRED_INT_KEY, EXPIRED_INT.subject), ca=False, san=[HOST])
    return _sign(_claims(), Leaf(jwk, leaf), x5c=[b64(leaf), b64(EXPIRED_INT)])


def _url_safe_x5c() -> list[str]:
    std = b64(EC_LEAF.cert)
    url = jose.b64u_encode(der(EC_LEAF.cert))
    assert url != std  # a DER certificate of this size always holds a '+' or '/' somewhere
    return [url, b64(PKI.intermediate)]


def _tampered() -> str:
    head, payload, sig = _sign(_claims()).split(".")
    claims = {**json.loads(jose.b64u_decode(payload)), "nonce": "another"}
    return ".".join((head, jose.b64u_encode(json.dumps(claims).encode()), sig))


@pytest.mark.parametrize(
    ("token", "message"),
    [
        # the chain
        (_sign(_claims(), OTHER_LEAF, x5c=OTHER_PKI.x5c(OTHER_LEAF)), "does not validate to a trust anchor"),
        (
            _sign(_claims(), OTHER_LEAF, x5c=[*OTHER_PKI.x5c(OTHER_LEAF), b64(OTHER_PKI.root)]),
            "trust anchor",
        ),
        (
            _sign(_claims(), x5c=[b64(EC_LEAF.cert)]),
            "does not validate to a trust anchor",
        ),  # no intermediate
        (_sign(_claims(), EXPIRED), "leaf certificate is expired or not yet valid"),
        (_sign(_claims(), NOT_YET), "leaf certificate is expired or not yet valid"),
        (_under_expired_intermediate(), "does not validate to a trust anchor"),
        (_sign(_claims(), NO_SIGNING), "key usage does not allow signing"),
        (_sign(_claims(CA_AS_LEAF.hash_client_id), CA_AS_LEAF, x5c=[b64(PKI.intermediate)]), "trust anchor"),
        # x5c itself
        (_sign(_claims(), x5c=[]), "non-empty array"),
        (_forged("MIIB"), "non-empty array"),
        (_sign(_claims(), x5c=None), "must send x5c"),
        (_forged([42]), "must be a string"),
        (_sign(_claims(), x5c=_url_safe_x5c()), "not a base64 DER certificate"),
        (_sign(_claims(), x5c=["AAAA"]), "not a base64 DER certificate"),
        (_sign(_claims(), x5c=["A" * ro.X5C_MAX_CERT_CHARS]), "not a base64 DER certificate"),
        (_sign(_claims(), x5c=["A" * (ro.X5C_MAX_CERT_CHARS + 4)]), "at most 8192 characters"),
        # the client identifier and the certificate
        (
            _sign(_claims("x509_san_dns:elsewhere.example", response_uri="https://elsewhere.example/r")),
            "subject alternative name",
        ),
        (_sign(_claims(), PKI.leaf("EC", san=())), "subject alternative name"),
        (_sign(_claims(), PKI.leaf("EC", san=["*.example"])), "subject alternative name"),
        (_sign(_claims("x509_san_dns:https://verifier.example")), "must be a DNS name"),
        (_sign(_claims("x509_san_dns:127.0.0.1", response_uri="https://127.0.0.1/r")), "must be a DNS name"),
        (_sign(_claims(ED_LEAF.hash_client_id), EC_LEAF), "x509_hash does not match"),
        (
            _sign(_claims(ro.X509_HASH_PREFIX + ro.x509_hash(der(PKI.intermediate)))),
            "x509_hash does not match",
        ),
        (_sign(_claims("x509_hash:")), "x509_hash does not match"),
        (
            _sign(_claims(response_uri="https://collector.example/r")),
            "response_uri host is not the x509_san_dns",
        ),
        (_sign(_claims(response_uri="http://127.0.0.1:8000/r")), "response_uri host is not the x509_san_dns"),
        # the key and the algorithm
        (_sign(_claims(), signer=ED_LEAF.jwk, alg="EdDSA"), "alg 'EdDSA' does not fit"),
        (
            _sign(_claims(ED_LEAF.hash_client_id), ED_LEAF, signer=EC_LEAF.jwk, alg="ES256"),
            "alg 'ES256' does not fit",
        ),
        (_sign(_claims(), signer=jose.generate_ec_p256()), r"signature invalid \(signature\)"),
        (_tampered(), "signature invalid"),
        (_sign(_claims(), Leaf(jose.generate_ec_p256(), P384_CERT)), r"must be P-256 \(ES256\) or Ed25519"),
        # one key source only
        (
            _sign(_claims(), kid="did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK#z6Mk"),
            "kid is refused",
        ),
        (_sign(_claims(), kid="verifier-2026"), "kid is refused"),
        (_sign(_claims(), jwk=jose.public_jwk(EC_LEAF.jwk)), "jwk is refused"),
        (_sign(_claims(), x5u="https://verifier.example/chain.pem"), "x5u is refused"),
        (_did_header_token(), "x5c is refused"),
        # the prefix
        (
            _sign(_claims("redirect_uri:https://verifier.example/response")),
            "prefix 'redirect_uri' is not supported",
        ),
        (_sign(_claims("verifier_attestation:verifier.example")), "not supported"),
        (_sign(_claims("https://verifier.example")), "not supported"),
        (_sign(_claims("verifier")), "no client_id with a Client Identifier prefix"),
        (_sign(_claims(None)), "no client_id"),
        # the shared checks still apply
        (_sign(_claims(aud="https://wallet.example")), "aud of the request object"),
        (_sign(_claims(exp=NOW - 61)), "expired"),
        (_sign(_claims(iss="x509_san_dns:other.example")), "iss of the request object"),
        (_sign(_claims(response_mode="fragment")), "direct_post"),
        (_sign(_claims(nonce=None)), "no usable nonce"),
    ],
)
def test_refused(token: str, message: str) -> None:
    with pytest.raises(ro.RequestObjectError, match=message):
        _verify(token)


def test_no_trust_anchors_no_x509_verifiers() -> None:
    for token in (_sign(_claims()), _sign(_claims(ED_LEAF.hash_client_id), ED_LEAF)):
        with pytest.raises(ro.RequestObjectError, match="verifiers need trust anchors"):
            _verify(token, anchors=[])
    # the anchors must be the right ones: the intermediate is not a root of this chain's trust
    assert _verify(_sign(_claims()), anchors=[PKI.intermediate])  # an intermediate may be an anchor
    with pytest.raises(ro.RequestObjectError, match="trust anchor"):
        _verify(_sign(_claims()), anchors=[OTHER_PKI.root])


def test_client_id_and_wallet_nonce_are_checked_as_for_did_verifiers() -> None:
    token = _sign(_claims(wallet_nonce="qPmxiNFCR3QTm19POc8u"))
    assert _verify(token, expected_wallet_nonce="qPmxiNFCR3QTm19POc8u")
    with pytest.raises(ro.RequestObjectError, match="wallet_nonce differs"):
        _verify(token, expected_wallet_nonce="qPmxiNFCR3QTm19POc8v")
    with pytest.raises(ro.RequestObjectError, match="differs from the one in the authorization request"):
        _verify(token, expected_client_id=EC_LEAF.hash_client_id)


def test_load_trust_anchors() -> None:
    both = ro.load_trust_anchors(pem(PKI.root, OTHER_PKI.root))
    assert [c.subject for c in both] == [PKI.root.subject, OTHER_PKI.root.subject]
    assert ro.load_trust_anchors(pem(PKI.root).decode()) == [PKI.root]
    with pytest.raises(ro.RequestObjectError, match="not a CA certificate"):
        ro.load_trust_anchors(pem(PKI.root, EC_LEAF.cert))
    with pytest.raises(ro.RequestObjectError, match="PEM certificates"):
        ro.load_trust_anchors(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for nothing in (b"", "no certificate here"):
        with pytest.raises(ro.RequestObjectError, match="no PEM certificate"):
            ro.load_trust_anchors(nothing)


# ---------------------------------------------------------------------------------------------
# RequestSigner.x509: the verifier's side


def _params(client_id: str, **override: Any) -> dict[str, Any]:
    return {k: v for k, v in _claims(client_id, **override).items() if k not in ("iss", "aud", "iat", "exp")}


def test_signer_x509_san_dns_round_trips_through_the_wallet_checks() -> None:
    signer = ro.RequestSigner.x509(EC_LEAF.jwk, PKI.chain(EC_LEAF), now=NOW)
    assert signer.client_id == SAN_CLIENT_ID and signer.prefix == "x509_san_dns" and signer.alg == "ES256"
    token = ro.sign_request(_params(signer.client_id), signer, iat=NOW, exp=NOW + 300)
    header = json.loads(jose.b64u_decode(token.split(".")[0]))
    assert header == {"typ": ro.TYP, "alg": "ES256", "x5c": PKI.x5c(EC_LEAF)}
    params = _verify(token, expected_client_id=SAN_CLIENT_ID)
    assert (
        params["iss"] == SAN_CLIENT_ID and params["aud"] == ro.SELF_ISSUED_AUD and params["exp"] == NOW + 300
    )
    # the chain may end with the root; the DNS name is picked among the leaf's names, in any case
    two = PKI.leaf("OKP", san=("other.example", HOST))
    named = ro.RequestSigner.x509(two.jwk, [*PKI.chain(two), PKI.root], dns_name=HOST.upper(), now=NOW)
    assert named.client_id == SAN_CLIENT_ID and named.alg == "EdDSA" and len(named.header["x5c"]) == 3
    assert _verify(ro.sign_request(_params(named.client_id), named, iat=NOW, exp=NOW + 1))
    # without a name the leaf's first one is used
    assert ro.RequestSigner.x509(two.jwk, PKI.chain(two), now=NOW).client_id == "x509_san_dns:other.example"


def test_signer_x509_hash_needs_no_name() -> None:
    bare = PKI.leaf("OKP", san=())
    signer = ro.RequestSigner.x509(bare.jwk, PKI.chain(bare), prefix="x509_hash", now=NOW)
    assert signer.client_id == bare.hash_client_id and signer.prefix == "x509_hash"
    token = ro.sign_request(_params(signer.client_id), signer, iat=NOW, exp=NOW + 300)
    assert _verify(token)["client_id"] == bare.hash_client_id


def test_signer_x509_takes_five_certificates_and_no_more() -> None:
    sub_key = ec.generate_private_key(ec.SECP256R1())
    subs: list[x509.Certificate] = []
    issuer: tuple[PrivateKey, x509.Name] = PKI.issuer
    for i in range(3):
        subs.insert(0, _cert(sub_key, f"Sub CA {i}", issuer, ca=True))
        issuer = (sub_key, subs[0].subject)
    jwk = jose.generate_ec_p256()
    key = jose.load_key(jwk, cache=False).private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    leaf = _cert(key, "deep", issuer, ca=False, san=[HOST])
    five = [leaf, *subs, PKI.intermediate]
    assert len(ro.RequestSigner.x509(jwk, five, now=NOW).header["x5c"]) == ro.X5C_MAX_CERTS
    with pytest.raises(ro.RequestObjectError, match="1 to 5 certificates"):
        ro.RequestSigner.x509(jwk, [*five, PKI.root], now=NOW)
    with pytest.raises(ro.RequestObjectError, match="1 to 5 certificates"):
        ro.RequestSigner.x509(jwk, [], now=NOW)


NO_SAN = PKI.leaf("EC", san=())
WILDCARD = PKI.leaf("EC", san=("*.example",))
SIGNER_REFUSALS = [
    ((EC_LEAF.jwk, [EC_LEAF.cert], {"prefix": "redirect_uri"}), "x509_san_dns or x509_hash"),
    ((jose.generate_ec_p256(), [EC_LEAF.cert], {}), "not the key of the verifier certificate"),
    ((jose.public_jwk(EC_LEAF.jwk), [EC_LEAF.cert], {}), "not the key of the verifier certificate"),
    ((EC_LEAF.jwk, [EC_LEAF.cert, PKI.root], {}), "not issued by the next certificate"),
    ((EC_LEAF.jwk, [EC_LEAF.cert, OTHER_PKI.intermediate], {}), "not issued by the next certificate"),
    ((EC_LEAF.jwk, [PKI.intermediate, EC_LEAF.cert], {}), "not the key of the verifier certificate"),
    ((NO_SIGNING.jwk, [NO_SIGNING.cert], {}), "key usage does not allow signing"),
    (
        (EC_LEAF.jwk, [EC_LEAF.cert], {"dns_name": "city.example"}),
        "no DNS subject alternative name 'city.example'",
    ),
    ((NO_SAN.jwk, [NO_SAN.cert], {}), "needs a certificate with a DNS subject alternative name"),
    ((WILDCARD.jwk, [WILDCARD.cert], {}), "not a DNS name a wallet accepts"),
    ((jose.generate_ec_p256(), [P384_CERT], {}), "certificate.s key: unsupported key type"),
]


@pytest.mark.parametrize(("args", "message"), SIGNER_REFUSALS)
def test_signer_x509_refuses_what_a_wallet_would(args: tuple[Any, Any, dict[str, Any]], message: str) -> None:
    jwk, chain, options = args
    with pytest.raises(ro.RequestObjectError, match=message):
        ro.RequestSigner.x509(jwk, chain, now=NOW, **options)


def test_signer_x509_signs_only_while_every_certificate_of_its_chain_is_valid() -> None:
    short = PKI.leaf(valid=(T0 - DAY, T0 + 2 * DAY))  # expires before the intermediate
    signer = ro.RequestSigner.x509(short.jwk, PKI.chain(short), now=NOW)
    end = NOW + 2 * 86_400
    assert signer.valid == (NOW - 86_400, end)
    params = _params(signer.client_id)
    assert _verify(ro.sign_request(params, signer, iat=end, exp=end + 60), now=end)
    with pytest.raises(ro.RequestObjectError, match="expired at 2026-01-03T00:00:00Z; renew it"):
        ro.sign_request(params, signer, iat=end + 1, exp=end + 60)
    with pytest.raises(ro.RequestObjectError, match="expired at 2026-01-03T00:00:00Z"):
        ro.RequestSigner.x509(short.jwk, PKI.chain(short), now=end + 1)
    with pytest.raises(ro.RequestObjectError, match="not valid before 2025-12-31T00:00:00Z"):
        ro.RequestSigner.x509(short.jwk, PKI.chain(short), now=NOW - 86_401)
    # a did:key signer has no validity period
    assert ro.RequestSigner.did_key(jose.generate_ed25519()).valid is None


# ---------------------------------------------------------------------------------------------
# the wallet: anchors in its encrypted state, and the HTTP path


def _wallet(tmp_path: Path, http: httpx.Client | None = None) -> Wallet:
    return Wallet.create(
        tmp_path / "w.json", "correct horse", kdf_profile="test", http=http, clock=lambda: NOW
    )


def test_wallet_keeps_trust_anchors_encrypted(tmp_path: Path) -> None:
    wallet = _wallet(tmp_path)
    assert wallet.trust_anchors() == []
    with pytest.raises(
        WalletError, match="presentation request refused: x509_san_dns verifiers need trust anchors"
    ):
        wallet.verify_request(_sign(_claims()))
    (added,) = wallet.add_trust_anchors(pem(PKI.root))
    assert added.subject == "CN=Civitas Test Root" and added.not_after == int((T0 + 365 * DAY).timestamp())
    assert added.fingerprint == PKI.root.fingerprint(hashes.SHA256()).hex()
    assert wallet.add_trust_anchors(pem(PKI.root, OTHER_PKI.root)) == [wallet.trust_anchors()[1]]
    assert wallet.verify_request(_sign(_claims()), request_uri=f"https://{HOST}/request")["state"] == "s-1"
    raw = (tmp_path / "w.json").read_text()
    assert "BEGIN CERTIFICATE" not in raw and b64(PKI.root)[:40] not in raw
    again = Wallet.open(tmp_path / "w.json", "correct horse", clock=lambda: NOW)
    assert [a.fingerprint for a in again.trust_anchors()] == [a.fingerprint for a in wallet.trust_anchors()]
    assert again.verify_request(_sign(_claims(ED_LEAF.hash_client_id), ED_LEAF))
    # a leaf is not a CA: nothing is stored
    with pytest.raises(WalletError, match="not a CA certificate"):
        again.add_trust_anchors(pem(OTHER_PKI.intermediate, EC_LEAF.cert))
    with pytest.raises(WalletError, match="no PEM certificate"):
        again.add_trust_anchors("")
    assert len(Wallet.open(tmp_path / "w.json", "correct horse").trust_anchors()) == 2
    fingerprint = ":".join(f"{b:02X}" for b in PKI.root.fingerprint(hashes.SHA256()))
    assert again.remove_trust_anchor(fingerprint).subject == "CN=Civitas Test Root"
    with pytest.raises(WalletError, match="no trust anchor"):
        again.remove_trust_anchor(fingerprint)
    with pytest.raises(WalletError, match="does not validate to a trust anchor"):
        Wallet.open(tmp_path / "w.json", "correct horse", clock=lambda: NOW).verify_request(_sign(_claims()))


def test_wallet_files_without_anchors_still_open(tmp_path: Path) -> None:
    wallet = _wallet(tmp_path)
    envelope = json.loads((tmp_path / "w.json").read_text())
    box = nacl.secret.SecretBox(wallet._key)  # written as before anchors existed: credentials only
    envelope["box"] = base64.b64encode(bytes(box.encrypt(b'{"credentials":[]}'))).decode()
    (tmp_path / "w.json").write_text(json.dumps(envelope))
    assert Wallet.open(tmp_path / "w.json", "correct horse").trust_anchors() == []


def test_wallet_metadata_lists_the_x509_prefixes() -> None:
    assert WALLET_METADATA["client_id_prefixes_supported"] == [
        "decentralized_identifier",
        "x509_san_dns",
        "x509_hash",
    ]
    assert WALLET_METADATA["request_object_signing_alg_values_supported"] == ["EdDSA", "Ed25519", "ES256"]


class X509Verifier:
    """A verifier on https://verifier.example that signs with an X.509 leaf (an httpx transport);
    ``crls`` (path -> body) plays its CA's web server."""

    def __init__(
        self, leaf: Leaf, client_id: str, x5c: list[str] | None = None, crls: dict[str, bytes] | None = None
    ) -> None:
        self.leaf, self.client_id, self.x5c = leaf, client_id, x5c
        self.crls = crls or {}
        self.responses: list[dict[str, str]] = []
        self.fetches: list[httpx.Request] = []
        self.crl_fetches: list[httpx.Request] = []

    def link(self, method: str = "post") -> str:
        query = {
            "client_id": self.client_id,
            "request_uri": f"https://{HOST}/request",
            "request_uri_method": method,
        }
        return "openid4vp://?" + str(httpx.QueryParams(query))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if request.url.path == "/request":
            self.fetches.append(request)
            claims = _claims(
                self.client_id,
                wallet_nonce=form.get("wallet_nonce"),
                dcql_query={
                    "credentials": [
                        {
                            "id": "residence",
                            "format": "dc+sd-jwt",
                            "meta": {"vct_values": [RESIDENT_VCT]},
                            "claims": [{"path": ["resident_of"]}],
                        }
                    ]
                },
            )
            token = _sign(claims, self.leaf, x5c=self.x5c or "chain")
            return httpx.Response(200, content=token, headers={"content-type": ro.MEDIA_TYPE})
        if request.url.path.endswith(".crl"):
            self.crl_fetches.append(request)
            if request.url.path not in self.crls:
                return httpx.Response(404)
            return httpx.Response(200, content=self.crls[request.url.path])
        if request.url.path == "/response":
            self.responses.append(form)
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"error": "not_found"})


@pytest.mark.parametrize("kind", ["x509_san_dns", "x509_hash"])
def test_presenting_to_an_x509_verifier_over_http(tmp_path: Path, engine: sa.Engine, kind: str) -> None:
    leaf = EC_LEAF if kind == "x509_san_dns" else ED_LEAF
    verifier = X509Verifier(leaf, SAN_CLIENT_ID if kind == "x509_san_dns" else leaf.hash_client_id)
    wallet = _wallet(tmp_path, httpx.Client(transport=httpx.MockTransport(verifier)))
    clock = FakeClock(NOW * 1_000_000_000)
    issuer = make_issuer(engine, clock)
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="c")
    grant = issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    keys = wallet.new_holder_keys(1)
    proofs = [make_proof(k, audience=ISSUER_ID, nonce=issuer.new_nonce(), iat=clock.s) for k in keys]
    stored = wallet.add_sd_jwt_batch(issuer.issue(grant.offer_id, proofs), keys, issuer_jwk=issuer.public_jwk)

    with pytest.raises(WalletError, match="need trust anchors"):
        wallet.fetch_link(verifier.link())
    wallet.add_trust_anchors(pem(PKI.root))
    request = wallet.fetch_link(verifier.link())
    assert request["client_id"] == verifier.client_id
    assert parse_qs(verifier.fetches[-1].content.decode())["wallet_nonce"] == [request["wallet_nonce"]]
    (item,) = wallet.preview(request)
    assert item.disclosed == {"resident_of": "civitas"}
    assert wallet.respond(request) == {}
    (answer,) = verifier.responses
    presentation = json.loads(answer["vp_token"])["residence"][0]
    assert sdjwt.parse(presentation.rsplit("~", 1)[0] + "~").claims["resident_of"] == "civitas"
    kb = json.loads(jose.b64u_decode(presentation.rsplit("~", 1)[1].split(".")[1]))
    assert kb["aud"] == verifier.client_id and kb["nonce"] == "n-0S6_WzA2Mj"
    assert answer["state"] == "s-1" and wallet.get(stored.id).unused == 0


def test_wallet_refuses_an_x509_verifier_it_does_not_trust_over_http(tmp_path: Path) -> None:
    stranger = X509Verifier(OTHER_LEAF, SAN_CLIENT_ID)
    wallet = _wallet(tmp_path, httpx.Client(transport=httpx.MockTransport(stranger)))
    wallet.add_trust_anchors(pem(PKI.root))
    with pytest.raises(WalletError, match="presentation request refused: x5c does not validate"):
        wallet.fetch_link(stranger.link("get"))
    # a trusted leaf naming another client in the link is refused as for did:key verifiers
    trusted = X509Verifier(EC_LEAF, SAN_CLIENT_ID)
    wallet.http = httpx.Client(transport=httpx.MockTransport(trusted))
    link = trusted.link().replace("verifier.example&", "other.example&", 1)
    assert "x509_san_dns%3Aother.example" in link
    with pytest.raises(WalletError, match="differs from the one in the authorization request"):
        wallet.fetch_link(link)
    assert stranger.responses == [] and trusted.responses == []


CRL_PKI = Pki(T0, HOST, "CRL Root", crl_base="http://pki.example")


def _der_crl(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(Encoding.DER)


def test_wallet_checks_the_verifiers_crls_over_http(tmp_path: Path) -> None:
    leaf = CRL_PKI.leaf()
    crls = {"/int.crl": _der_crl(CRL_PKI.crl()), "/root.crl": _der_crl(CRL_PKI.crl(by="root"))}
    verifier = X509Verifier(leaf, SAN_CLIENT_ID, CRL_PKI.x5c(leaf), crls)
    wallet = _wallet(tmp_path, httpx.Client(transport=httpx.MockTransport(verifier)))
    wallet.add_trust_anchors(pem(CRL_PKI.root))
    assert wallet.fetch_link(verifier.link())["client_id"] == SAN_CLIENT_ID
    fetched = [(r.method, str(r.url), r.headers["accept"]) for r in verifier.crl_fetches]
    assert fetched == [
        ("GET", "http://pki.example/int.crl", "application/pkix-crl"),
        ("GET", "http://pki.example/root.crl", "application/pkix-crl"),
    ]
    wallet.fetch_link(verifier.link())  # the CRLs are kept until their nextUpdate
    assert len(verifier.crl_fetches) == 2

    # once the CA revokes the leaf, a wallet refuses the verifier before sending anything
    verifier.crls["/int.crl"] = _der_crl(CRL_PKI.crl([leaf.cert]))
    fresh = Wallet.open(tmp_path / "w.json", "correct horse", http=wallet.http, clock=lambda: NOW)
    with pytest.raises(WalletError, match="x5c: certificate 'CN=verifier' is revoked"):
        fresh.fetch_link(verifier.link())
    assert verifier.responses == []


@pytest.mark.parametrize(
    ("served", "message"),
    [
        (None, "int.crl: HTTP 404"),
        (b"\0" * (1024 * 1024 + 1), "int.crl: CRL over 1048576 bytes"),
        (b"<html>not a crl</html>", "int.crl: not a DER or PEM CRL"),
    ],
)
def test_wallet_refuses_when_a_crl_cannot_be_had(tmp_path: Path, served: bytes | None, message: str) -> None:
    leaf = CRL_PKI.leaf()
    crls = {"/root.crl": _der_crl(CRL_PKI.crl(by="root"))}
    if served is not None:
        crls["/int.crl"] = served
    verifier = X509Verifier(leaf, SAN_CLIENT_ID, CRL_PKI.x5c(leaf), crls)
    wallet = _wallet(tmp_path, httpx.Client(transport=httpx.MockTransport(verifier)))
    wallet.add_trust_anchors(pem(CRL_PKI.root))
    with pytest.raises(WalletError, match=f"revocation status of 'CN=verifier' unknown .*{message}"):
        wallet.fetch_link(verifier.link())
    # without an HTTP client the wallet cannot learn the status either
    offline = Wallet.open(tmp_path / "w.json", "correct horse", clock=lambda: NOW)
    token = _sign(_claims(), leaf, x5c=CRL_PKI.x5c(leaf))
    with pytest.raises(WalletError, match="no HTTP client to fetch the CRL"):
        offline.verify_request(token)
