"""The `civitas` command line, in-process and through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from civitas import cli

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
    ["openapi"],
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


def test_migrate_reports_heads(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate"]) == 0
    assert "civitas_0001" in capsys.readouterr().out
