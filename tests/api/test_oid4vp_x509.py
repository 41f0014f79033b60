"""The service as an X.509 verifier (OpenID4VP ``x509_san_dns`` / ``x509_hash``): the operator
makes a key and a CSR, a CA certifies it, the service signs Request Objects with ``x5c`` and a
wallet that trusts the CA presents to it over HTTP. Every certificate is made here."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.testclient import TestClient

from civitas import cli
from civitas.app import create_app
from civitas.clients import add_client
from civitas.settings import Settings
from civitas.verifier_cert import VerifierCertificateError, certificate_request, key_path
from identity import jose
from identity import request_object as ro
from identity.wallet import Wallet, WalletError

from ..identity.x509_support import Leaf, Pki, pem
from .conftest import BASE_URL
from .identity_support import (
    FORM,
    RESIDENT_QUERY,
    ask,
    identity_settings,
    jwt_header,
    jwt_payload,
    resident_wallet,
)

HOST = "testserver"  # BASE_URL's host
PKI = Pki(dt.datetime.now(dt.UTC), HOST)


def _certified(settings: Settings, tmp_path: Path, name: str = HOST, key_type: str = "p256") -> Settings:
    """The operator's steps: a key and CSR, a certificate from the CA, the chain in the settings."""
    csr, made = certificate_request(settings, name, key_type)
    assert made
    cert = PKI.certify(x509.load_pem_x509_csr(csr))
    chain = tmp_path / "verifier-chain.pem"
    chain.write_bytes(pem(cert, PKI.intermediate))
    return settings.model_copy(update={"verifier_x509_chain": chain})


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return _certified(identity_settings(tmp_path, db_url), tmp_path)


def _trusting(wallet: Wallet) -> Wallet:
    wallet.add_trust_anchors(pem(PKI.root))
    return wallet


def test_the_service_presents_itself_with_its_certificate_end_to_end(
    client: TestClient, agency: dict[str, str], token_for: Any, tmp_path: Path, settings: Settings
) -> None:
    req = ask(client, agency)
    assert req["client_id"] == "x509_san_dns:testserver"
    assert "client_id=x509_san_dns%3Atestserver" in req["authorization_request_uri"]
    served = client.get(req["request_uri"])
    header, claims = jwt_header(served.text), jwt_payload(served.text)
    assert header["alg"] == "ES256" and "kid" not in header and len(header["x5c"]) == 2
    assert settings.verifier_x509_chain is not None
    leaf = x509.load_pem_x509_certificates(settings.verifier_x509_chain.read_bytes())[0]
    assert base64.b64decode(header["x5c"][0]) == leaf.public_bytes(serialization.Encoding.DER)
    assert claims["client_id"] == claims["iss"] == "x509_san_dns:testserver"
    # the key file was made private
    assert os.stat(key_path(settings)).st_mode & 0o777 == 0o600

    wallet = _trusting(resident_wallet(client, token_for, tmp_path / "wallet.json"))
    obj = wallet.fetch_link(req["authorization_request_uri"])  # POST, with a wallet_nonce
    assert obj["client_id"] == "x509_san_dns:testserver"
    assert wallet.respond(obj) == {}
    result = client.get(f"/identity/presentation-requests/{req['id']}/result", headers=agency).json()
    # the Key Binding JWT's aud is the X.509 client_id, which the service checked
    assert result["accepted"] and result["disclosed"] == {"res": {"resident_of": "civitas"}}


def test_a_wallet_that_does_not_trust_the_ca_refuses_and_sends_nothing(
    client: TestClient, agency: dict[str, str], token_for: Any, tmp_path: Path
) -> None:
    req = ask(client, agency)
    wallet = resident_wallet(client, token_for, tmp_path / "wallet.json")
    with pytest.raises(WalletError, match="trusts no CA certificate"):
        wallet.fetch_link(req["authorization_request_uri"])
    wallet.add_trust_anchors(pem(Pki(dt.datetime.now(dt.UTC), HOST, "Another Root").root))
    with pytest.raises(WalletError, match="does not validate to a trust anchor"):
        wallet.fetch_link(req["authorization_request_uri"])
    pending = client.get(f"/identity/presentation-requests/{req['id']}/result", headers=agency)
    assert pending.json()["status"] == "pending"


def test_wallet_metadata_must_allow_the_x509_prefix_and_the_leaf_alg(
    client: TestClient, agency: dict[str, str]
) -> None:
    req = ask(client, agency)
    for metadata, ok in (
        ({"client_id_prefixes_supported": ["decentralized_identifier"]}, False),
        ({"client_id_prefixes_supported": ["x509_san_dns"]}, True),
        ({"request_object_signing_alg_values_supported": ["EdDSA"]}, False),
        ({"request_object_signing_alg_values_supported": ["ES256"]}, True),
    ):
        answer = client.post(req["request_uri"], data={"wallet_metadata": json.dumps(metadata)}, headers=FORM)
        assert answer.status_code == (200 if ok else 400), metadata
        if not ok:
            assert answer.json()["error"] == "invalid_request"


def test_x509_hash_with_an_ed25519_key(tmp_path: Path, db_url: str) -> None:
    base = identity_settings(tmp_path / "hash", db_url, verifier_client_id_prefix="x509_hash")
    hashed = _certified(base, tmp_path, key_type="ed25519")
    app = create_app(hashed)
    try:
        assert hashed.verifier_x509_chain is not None
        leaf = x509.load_pem_x509_certificates(hashed.verifier_x509_chain.read_bytes())[0]
        expected = ro.X509_HASH_PREFIX + ro.x509_hash(leaf.public_bytes(serialization.Encoding.DER))
        assert app.state.identity_verifier.client_id == expected
        assert app.state.identity_verifier.signer.alg == "EdDSA"
    finally:
        app.state.ledger.close()
        app.state.engine.dispose()


def _key_file(path: Path, leaf: Leaf) -> Path:
    key = jose.load_key(leaf.jwk, cache=False).private_key
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _files(op: Path, leaf: Leaf, *extra: x509.Certificate, **override: str) -> dict[str, Path]:
    """The operator's files for ``leaf`` (its key, and its chain with ``extra``); ``override``
    points a setting at another file of ``op`` instead."""
    (op / "chain.pem").write_bytes(pem(leaf.cert, *extra))
    _key_file(op / "leaf.key", leaf)
    _key_file(op / "other.key", PKI.leaf())
    files = {"verifier_x509_chain": op / "chain.pem", "verifier_x509_key": op / "leaf.key"}
    return {**files, **{name: op / file for name, file in override.items()}}


STARTUP_REFUSALS: list[tuple[Callable[[Path], dict[str, Path]], str]] = [
    (
        lambda op: _files(op, PKI.leaf(san=("city.example",)), PKI.intermediate),
        "no DNS subject alternative name 'testserver'",
    ),
    (
        lambda op: _files(op, PKI.leaf(), PKI.intermediate, verifier_x509_key="other.key"),
        "not the key of the verifier certificate",
    ),
    (lambda op: _files(op, PKI.leaf(), PKI.root), "not issued by the next certificate"),
    (lambda op: _files(op, PKI.leaf(key_usage=False)), "key usage does not allow signing"),
    (
        lambda op: _files(op, PKI.leaf(), verifier_x509_chain="missing.pem"),
        "cannot read the verifier certificate chain",
    ),
    (lambda op: _files(op, PKI.leaf(), verifier_x509_key="missing.key"), "cannot read the verifier key"),
    (lambda op: _files(op, PKI.leaf(), verifier_x509_key="chain.pem"), "not an unencrypted PEM private key"),
    (lambda op: _files(op, PKI.leaf(), verifier_x509_chain="leaf.key"), "not a PEM certificate chain"),
]


@pytest.mark.parametrize(("files", "message"), STARTUP_REFUSALS)
def test_the_service_does_not_start_with_an_unusable_certificate(
    tmp_path: Path, db_url: str, files: Callable[[Path], dict[str, Path]], message: str
) -> None:
    (tmp_path / "op").mkdir()
    settings = identity_settings(tmp_path, db_url, **files(tmp_path / "op"))
    with pytest.raises(VerifierCertificateError, match=message):
        create_app(settings)


def test_certificate_request(tmp_path: Path, db_url: str) -> None:
    settings = identity_settings(tmp_path, db_url)
    csr_pem, made = certificate_request(settings, "City.Example", "ed25519")
    csr = x509.load_pem_x509_csr(csr_pem)
    assert made and csr.is_signature_valid
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["city.example"]
    assert csr.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    # a second request (a renewal) keeps the key
    again, made_again = certificate_request(settings, "city.example", "p256")
    assert not made_again
    assert x509.load_pem_x509_csr(again).public_key() == csr.public_key()
    for bad, message in (
        ("*.city.example", "not a DNS name"),
        ("10.0.0.1 x", "not a DNS name"),
        ("127.0.0.1", "not a DNS name"),  # e.g. the default public URL's host
    ):
        with pytest.raises(VerifierCertificateError, match=message):
            certificate_request(settings, bad)
    with pytest.raises(VerifierCertificateError, match="key type"):
        certificate_request(settings, "city.example", "rsa")


# ---------------------------------------------------------------------------------------------
# revocation and expiry of the service's own certificate


class _CrlServer:
    """The CA's CRL distribution point: a real HTTP server on loopback serving ``crls`` by path."""

    def __init__(self) -> None:
        self.crls: dict[str, bytes] = {}
        self.fetched: list[str] = []
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.fetched.append(self.path)
                body = served.crls.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/pkix-crl")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crl_server() -> Iterator[_CrlServer]:
    server = _CrlServer()
    yield server
    server.close()


def _start(settings: Settings, clock: Callable[[], int] = time.time_ns) -> FastAPI:
    return create_app(settings, clock=clock)


def _stop(app: FastAPI) -> None:
    app.state.ledger.close()
    app.state.engine.dispose()


def _crl_settings(tmp_path: Path, db_url: str, crl_server: _CrlServer) -> tuple[Settings, Pki, Leaf]:
    """A verifier leaf whose CA publishes CRLs on ``crl_server``: chain = leaf + intermediate."""
    pki = Pki(dt.datetime.now(dt.UTC), HOST, "CRL Root", crl_base=crl_server.url)
    leaf = pki.leaf()
    (tmp_path / "op").mkdir()
    return identity_settings(tmp_path, db_url, **_files(tmp_path / "op", leaf, pki.intermediate)), pki, leaf


def test_the_service_checks_its_certificate_against_the_cas_crl_when_it_starts(
    tmp_path: Path, db_url: str, crl_server: _CrlServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings, pki, leaf = _crl_settings(tmp_path, db_url, crl_server)
    crl_server.crls["/int.crl"] = pki.crl().public_bytes(serialization.Encoding.DER)
    _stop(_start(settings))
    # the leaf's status comes from its issuer's CRL; the intermediate's issuer (the root) is not in
    # the chain, so its CRL could not be checked and is not fetched
    assert crl_server.fetched == ["/int.crl"]
    assert "verifier certificate" not in caplog.text

    crl_server.crls["/int.crl"] = pki.crl([leaf.cert]).public_bytes(serialization.Encoding.DER)
    with pytest.raises(VerifierCertificateError, match="'CN=verifier' is revoked; wallets refuse it"):
        _start(settings)


@pytest.mark.parametrize(
    ("served", "message"), [(None, "int.crl: HTTP 404"), (b"junk", "not a DER or PEM CRL")]
)
def test_a_crl_the_service_cannot_use_is_logged_not_fatal(
    tmp_path: Path,
    db_url: str,
    crl_server: _CrlServer,
    caplog: pytest.LogCaptureFixture,
    served: bytes | None,
    message: str,
) -> None:
    settings, _, _ = _crl_settings(tmp_path, db_url, crl_server)
    if served is not None:
        crl_server.crls["/int.crl"] = served
    with caplog.at_level(logging.WARNING, logger="civitas.verifier_cert"):
        app = _start(settings)
    _stop(app)
    assert app.state.identity_verifier.client_id == "x509_san_dns:testserver"
    assert "revocation status of 'CN=verifier' unknown" in caplog.text and message in caplog.text


def test_an_expired_certificate_stops_new_requests_until_it_is_renewed(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = dt.datetime.now(dt.UTC)
    (tmp_path / "op").mkdir()
    soon = PKI.leaf(valid=(now - dt.timedelta(days=1), now + dt.timedelta(seconds=90)))
    settings = identity_settings(tmp_path, db_url, **_files(tmp_path / "op", soon, PKI.intermediate))
    offset = [0]

    def clock() -> int:
        return time.time_ns() + offset[0]

    with caplog.at_level(logging.WARNING, logger="civitas.verifier_cert"):
        app = _start(settings, clock)
    assert "the verifier certificate chain expires at" in caplog.text
    try:
        with TestClient(app, base_url=BASE_URL) as client:
            registered, secret = add_client(app.state.engine, "agency", "identity:verify")
            token = client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(registered.client_id, secret),
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            req = ask(client, headers)
            assert client.get(req["request_uri"]).status_code == 200

            offset[0] = 120 * 1_000_000_000  # past the leaf's notAfter, within the token's lifetime
            for refused in (
                client.post(
                    "/identity/presentation-requests", json={"dcql_query": RESIDENT_QUERY}, headers=headers
                ),
                client.post("/identity/citizen-sessions", json={}),
            ):
                assert refused.status_code == 503, refused.text
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert "the verifier certificate chain expired at" in refused.json()["detail"]
            for fetch in (
                client.get(req["request_uri"]),
                client.post(req["request_uri"], data={}, headers=FORM),
            ):
                assert fetch.status_code == 503, fetch.text
                assert fetch.json()["error"] == "temporarily_unavailable"
                assert "expired at" in fetch.json()["error_description"]
    finally:
        _stop(app)
    # and a service does not start with it any more
    with pytest.raises(VerifierCertificateError, match="expired at"):
        _start(settings, clock)


def test_keys_verifier_check_reports_what_the_service_would(
    tmp_path: Path,
    db_url: str,
    crl_server: _CrlServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CIVITAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CIVITAS_PUBLIC_URL", BASE_URL)
    assert cli.main(["keys", "verifier-check"]) == 2
    assert "CIVITAS_VERIFIER_X509_CHAIN is not set" in capsys.readouterr().err

    settings, pki, leaf = _crl_settings(tmp_path, db_url, crl_server)
    monkeypatch.setenv("CIVITAS_VERIFIER_X509_CHAIN", str(settings.verifier_x509_chain))
    monkeypatch.setenv("CIVITAS_VERIFIER_X509_KEY", str(settings.verifier_x509_key))
    crl_server.crls["/int.crl"] = pki.crl().public_bytes(serialization.Encoding.DER)
    assert cli.main(["keys", "verifier-check"]) == 0
    out = capsys.readouterr().out
    assert "x509_san_dns:testserver" in out and "ES256" in out and "'CN=verifier' is not revoked" in out

    del crl_server.crls["/int.crl"]
    assert cli.main(["keys", "verifier-check"]) == 1
    assert "revocation status of 'CN=verifier' unknown" in capsys.readouterr().out

    crl_server.crls["/int.crl"] = pki.crl([leaf.cert]).public_bytes(serialization.Encoding.DER)
    assert cli.main(["keys", "verifier-check"]) == 2
    assert "'CN=verifier' is revoked" in capsys.readouterr().err
