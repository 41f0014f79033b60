"""The service's signing keys: created on first start in the data dir (files 0600) or given by env.

Keys are named by purpose (`service` signs access tokens, receipts and status lists; `log` signs
ledger checkpoints). Rotation makes a fresh key current and keeps only the public half of the
old one, so signatures made before the rotation still verify. Nothing here ever logs or returns
private key material; `repr` shows key ids only.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, OKPKey
from nacl.signing import SigningKey, VerifyKey

from identity import did_key

KEY_NAMES = ("service", "log")
_SEED_BYTES = 32


class KeyStoreError(Exception):
    """A key file is missing, malformed or cannot be written."""


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 from the first byte."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_private(path: Path, payload: dict[str, Any]) -> None:
    write_private(path, json.dumps(payload).encode())


@dataclass(frozen=True)
class PublicKey:
    kid: str  # did:key URL with fragment
    public: bytes

    @property
    def did(self) -> str:
        return self.kid.split("#", 1)[0]

    def jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64u(self.public), "kid": self.kid, "alg": "EdDSA"}

    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.public)


@dataclass(frozen=True)
class ServiceKey(PublicKey):
    seed: bytes = field(repr=False)

    @classmethod
    def from_seed(cls, seed: bytes) -> ServiceKey:
        if len(seed) != _SEED_BYTES:
            raise KeyStoreError("an Ed25519 seed is 32 bytes")
        public = bytes(SigningKey(seed).verify_key)
        kid = did_key.verification_method_id(did_key.encode("Ed25519", public))
        return cls(kid=kid, public=public, seed=seed)

    def signing_key(self) -> SigningKey:
        return SigningKey(self.seed)

    def private_jwk(self) -> OKPKey:
        return OKPKey.import_key({**self.jwk(), "d": _b64u(self.seed)})

    def public_only(self) -> PublicKey:
        return PublicKey(kid=self.kid, public=self.public)


class KeyStore:
    """Named Ed25519 keys: one current key per name plus retired public keys."""

    def __init__(self, directory: Path | None, env_seeds: dict[str, bytes] | None = None) -> None:
        self._dir = directory
        self._env = dict(env_seeds or {})
        self._current: dict[str, ServiceKey] = {}
        self._retired: dict[str, list[PublicKey]] = {}
        # name -> (kids, imported key set): importing keys costs more than checking a signature
        self._keysets: dict[str, tuple[tuple[str, ...], KeySet]] = {}

    def __repr__(self) -> str:
        return f"KeyStore({self._dir!s}, names={sorted(self._current)})"

    @classmethod
    def open(cls, data_dir: Path, signing_key_b64: str | None = None) -> KeyStore:
        env = {"service": _unb64u(signing_key_b64)} if signing_key_b64 else {}
        store = cls(data_dir / "keys", env)
        for name in KEY_NAMES:
            store.current(name)
        return store

    def _path(self, name: str) -> Path:
        if name not in KEY_NAMES:
            raise KeyStoreError(f"unknown key name {name!r}; known: {', '.join(KEY_NAMES)}")
        if self._dir is None:
            raise KeyStoreError("this key store has no directory")
        return self._dir / f"{name}.json"

    def _load(self, name: str) -> None:
        if name in self._env:
            self._current[name] = ServiceKey.from_seed(self._env[name])
            self._retired.setdefault(name, [])
            return
        path = self._path(name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(
                path, {"seed": _b64u(os.urandom(_SEED_BYTES)), "created_ns": time.time_ns(), "retired": []}
            )
        try:
            doc = json.loads(path.read_text())
            self._current[name] = ServiceKey.from_seed(_unb64u(doc["seed"]))
            self._retired[name] = [
                PublicKey(kid=r["kid"], public=_unb64u(r["public"])) for r in doc["retired"]
            ]
        except (KeyError, ValueError, TypeError) as exc:
            raise KeyStoreError(f"key file for {name!r} is malformed") from exc

    def current(self, name: str = "service") -> ServiceKey:
        if name not in self._current:
            self._load(name)
        return self._current[name]

    def retired(self, name: str = "service") -> list[PublicKey]:
        self.current(name)
        return list(self._retired[name])

    def all_public(self, name: str = "service") -> list[PublicKey]:
        return [self.current(name).public_only(), *self.retired(name)]

    def rotate(self, name: str = "service") -> ServiceKey:
        """Make a fresh key current; the old key's public half stays for verification."""
        if name in self._env:
            raise KeyStoreError(f"the {name!r} key comes from the environment; rotate it there")
        old = self.current(name)
        retired = [old.public_only(), *self._retired[name]]
        _write_private(
            self._path(name),
            {
                "seed": _b64u(os.urandom(_SEED_BYTES)),
                "created_ns": time.time_ns(),
                "retired": [{"kid": k.kid, "public": _b64u(k.public)} for k in retired],
            },
        )
        del self._current[name]
        return self.current(name)

    def public_jwks(self, name: str = "service") -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.jwk() for k in self.all_public(name)]}

    def verification_keyset(self, name: str = "service") -> KeySet:
        """The current and retired public keys as a joserfc KeySet (the same object until a rotation)."""
        public = self.all_public(name)
        kids = tuple(k.kid for k in public)
        cached = self._keysets.get(name)
        if cached is None or cached[0] != kids:
            keyset = KeySet.import_key_set({"keys": [k.jwk() for k in public]})  # type: ignore[list-item]
            cached = self._keysets[name] = (kids, keyset)
        return cached[1]
