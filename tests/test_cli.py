"""The `civitas` command line, in-process and through the installed console script."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from civitas import cli

from .identity.x509_support import make_cert, pem

SUBCOMMANDS = [
    ["serve"],
    ["migrate"],
    ["clients"],
    ["clients", "add"],
    ["clients", "list"],
    ["clients", "revoke"],
    ["keys"],
    ["keys", "show"],
    ["keys", "rotate"],
    ["keys", "verifier-csr"],
    ["keys", "verifier-check"],
    ["openapi"],
    ["wallet", "trust"],
    ["wallet", "trust", "add"],
    ["wallet", "trust", "list"],
    ["wallet", "trust", "remove"],
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Path:
    monkeypatch.setenv("CIVITAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CIVITAS_DATABASE_URL", db_url)
    return tmp_path / "data"


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w))
def test_every_command_has_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: civitas" in capsys.readouterr().out


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "civitas.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "serve" in out.stdout and "clients" in out.stdout


def test_clients_add_list_revoke(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(
            [
                "clients",
                "add",
                "--name",
                "Transit agency",
                "--scopes",
                "ledger:read identity:verify",
                "--json",
            ]
        )
        == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert len(created["client_secret"]) >= 40
    assert cli.main(["clients", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "client_id": created["client_id"],
            "name": "Transit agency",
            "scopes": ["ledger:read", "identity:verify"],
            "active": True,
        }
    ]
    assert created["client_secret"] not in json.dumps(listed)
    assert cli.main(["clients", "revoke", created["client_id"]]) == 0
    capsys.readouterr()
    cli.main(["clients", "list", "--json"])
    assert json.loads(capsys.readouterr().out)[0]["active"] is False
    assert cli.main(["clients", "revoke", "c_missing"]) == 2


def test_clients_add_rejects_bad_scopes(env: Path) -> None:
    assert cli.main(["clients", "add", "--name", "x", "--scopes", "BAD SCOPE!"]) == 2


def test_keys_show_and_rotate_print_ids_only(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "show"]) == 0
    shown = capsys.readouterr().out
    assert "did:key:z6Mk" in shown and "current" in shown
    seed = json.loads((env / "keys" / "service.json").read_text())["seed"]
    assert seed not in shown
    assert cli.main(["keys", "rotate"]) == 0
    capsys.readouterr()
    cli.main(["keys", "show"])
    assert "retired" in capsys.readouterr().out


def test_keys_verifier_csr(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CIVITAS_PUBLIC_URL", "https://city.example/civitas")
    assert cli.main(["keys", "verifier-csr"]) == 0
    out = capsys.readouterr()
    csr = x509.load_pem_x509_csr(out.out.encode())
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["city.example"]  # the public URL's host
    key = env / "keys" / "verifier-x509-key.pem"
    assert f"made the verifier key {key};" in out.err and key.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in out.out
    assert cli.main(["keys", "verifier-csr", "--dns", "verify.city.example"]) == 0
    again = capsys.readouterr()
    assert "kept the verifier key" in again.err
    assert x509.load_pem_x509_csr(again.out.encode()).public_key() == csr.public_key()
    assert cli.main(["keys", "verifier-csr", "--dns", "*.city.example"]) == 2
    assert "not a DNS name" in capsys.readouterr().err


def test_migrate_reports_heads(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate"]) == 0
    assert "civitas_0001" in capsys.readouterr().out


def _ca_pem(cn: str, *, ca: bool = True) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return pem(make_cert(key, cn, ca=ca, valid=(now, now + dt.timedelta(days=3650))))


def test_wallet_trust_add_list_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from civitas import cli_wallet

    monkeypatch.setenv(cli_wallet.PASSPHRASE_ENV, "cli passphrase")
    wallet = str(tmp_path / "w.json")
    (tmp_path / "root.pem").write_bytes(_ca_pem("City Verifier Root"))
    (tmp_path / "both.pem").write_bytes(_ca_pem("City Verifier Root 2") + _ca_pem("EU Verifier Root"))
    (tmp_path / "leaf.pem").write_bytes(_ca_pem("verifier.example", ca=False))

    def run(*argv: str) -> int:
        return cli.main(["wallet", "--wallet", wallet, *argv])

    assert run("init") == 0
    assert run("trust", "list") == 0
    assert (
        "no trust anchors: X.509 verifiers (x509_san_dns, x509_hash) are refused" in capsys.readouterr().out
    )
    assert run("trust", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == []
    assert run("trust", "add", str(tmp_path / "root.pem")) == 0
    assert "trusted CN=City Verifier Root (SHA-256 " in capsys.readouterr().out
    assert run("trust", "add", str(tmp_path / "root.pem")) == 0
    assert "already trusted" in capsys.readouterr().out
    assert run("trust", "add", str(tmp_path / "both.pem")) == 0
    capsys.readouterr()
    assert run("trust", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [a["subject"] for a in listed] == [
        "CN=City Verifier Root",
        "CN=City Verifier Root 2",
        "CN=EU Verifier Root",
    ]
    assert (
        listed[0]["pem"].encode() == (tmp_path / "root.pem").read_bytes() and len(listed[0]["sha256"]) == 64
    )
    assert run("trust", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == f"{listed[2]['sha256']}  valid until 2035-12-30  CN=EU Verifier Root"
    # refusals change nothing and exit 2 with the reason
    assert run("trust", "add", str(tmp_path / "leaf.pem")) == 2
    assert "not a CA certificate" in capsys.readouterr().err
    assert run("trust", "add", str(tmp_path / "missing.pem")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert run("trust", "remove", "00" * 32) == 2
    assert run("trust", "remove", listed[1]["sha256"].upper()) == 0
    assert "no longer trusted: CN=City Verifier Root 2" in capsys.readouterr().out
    run("trust", "list", "--json")
    assert [a["sha256"] for a in json.loads(capsys.readouterr().out)] == [
        listed[0]["sha256"],
        listed[2]["sha256"],
    ]
