"""Service keys: created once with mode 0600, stable across restarts, rotation keeps public halves."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from civitas.keys import KeyStore, KeyStoreError
from identity import did_key


def test_keys_are_created_private_and_stable(tmp_path: Path) -> None:
    first = KeyStore.open(tmp_path)
    for name in ("service", "log"):
        mode = stat.S_IMODE(os.stat(tmp_path / "keys" / f"{name}.json").st_mode)
        assert mode == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    again = KeyStore.open(tmp_path)
    assert again.current("service") == first.current("service")
    assert first.current("service").kid != first.current("log").kid


def test_kid_is_the_did_key_of_the_public_key(tmp_path: Path) -> None:
    key = KeyStore.open(tmp_path).current()
    decoded = did_key.decode(key.kid)
    assert decoded.key_type == "Ed25519" and decoded.public_key == key.public
    assert key.kid == f"{key.did}#{key.did.removeprefix('did:key:')}"


def test_rotation_keeps_retired_public_keys_only(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path)
    old = store.current()
    new = store.rotate()
    assert new != old and store.current() == new
    reopened = KeyStore.open(tmp_path)
    assert [k.kid for k in reopened.all_public()] == [new.kid, old.kid]
    text = (tmp_path / "keys" / "service.json").read_text()
    assert base64.urlsafe_b64encode(old.seed).rstrip(b"=").decode() not in text
    message = b"signed before rotation"
    signature = old.signing_key().sign(message).signature
    reopened.retired()[0].verify_key().verify(message, signature)


def test_key_from_environment_is_used_and_cannot_be_rotated_here(tmp_path: Path) -> None:
    seed = bytes(range(32))
    store = KeyStore.open(tmp_path, base64.urlsafe_b64encode(seed).rstrip(b"=").decode())
    assert store.current().public == bytes(SigningKey(seed).verify_key)
    assert not (tmp_path / "keys" / "service.json").exists()
    with pytest.raises(KeyStoreError):
        store.rotate("service")


def test_repr_and_jwks_never_show_private_material(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path)
    seed_b64 = base64.urlsafe_b64encode(store.current().seed).rstrip(b"=").decode()
    assert seed_b64 not in repr(store) and seed_b64 not in repr(store.current())
    assert all("d" not in jwk for jwk in store.public_jwks()["keys"])


def test_malformed_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "service.json").write_text("{}")
    with pytest.raises(KeyStoreError, match="malformed"):
        KeyStore.open(tmp_path)
