"""A tlog witness and the client-side quorum check.

`Witness` keeps, per log origin, the last tree size and root hash it cosigned (a JSON file written
atomically). Given a new signed checkpoint and a consistency proof from the size it last saw, it
checks the log's signature, refuses rollbacks and forks, verifies consistency, persists the new
state and only then returns a `cosignature/v1` line. The first checkpoint of a log is trusted on
first use (old size 0, no proof), as C2SP tlog-witness does.

`verify_checkpoint(note, log_key, witness_keys, quorum)` is what a client runs: the log's signature
must verify and at least `quorum` of the listed witnesses must have cosigned the same checkpoint.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from . import merkle, note

__all__ = ["Witness", "WitnessConflictError", "WitnessError", "verify_checkpoint"]


class WitnessError(note.NoteError):
    """The witness refuses a checkpoint (unknown log, bad signature, rollback, fork, bad proof)."""


class WitnessConflictError(WitnessError):
    """The caller's old size is not the size the witness holds; retry from `known_size`."""

    def __init__(self, known_size: int) -> None:
        super().__init__(f"witness holds size {known_size}")
        self.known_size = known_size


@dataclass(frozen=True, slots=True)
class _LogHead:
    size: int
    root: bytes


class Witness:
    def __init__(
        self,
        name: str,
        signing_key: SigningKey,
        state_path: str | os.PathLike[str],
        logs: Sequence[str | note.NoteVerifier],
        clock_s: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self.name = name
        self.signing_key = signing_key
        self.state_path = Path(state_path)
        self.clock_s = clock_s
        self.logs: dict[str, note.NoteVerifier] = {}
        for k in logs:
            v = note.NoteVerifier.parse(k) if isinstance(k, str) else k
            self.logs[v.name] = v
        self._lock = threading.Lock()
        self._heads = self._load()

    @property
    def verifier(self) -> note.NoteVerifier:
        return note.NoteVerifier.from_key(self.name, self.signing_key.verify_key, note.ALG_COSIGNATURE_V1)

    @property
    def verifier_key(self) -> str:
        """The witness's cosignature verifier key (`<name>+<key ID>+<base64(0x04 || key)>`)."""
        return self.verifier.vkey()

    def _load(self) -> dict[str, _LogHead]:
        if not self.state_path.exists():
            return {}
        data = json.loads(self.state_path.read_text())
        return {o: _LogHead(int(h["size"]), base64.b64decode(h["root"])) for o, h in data.items()}

    def _save(self) -> None:
        data = {
            o: {"size": h.size, "root": base64.b64encode(h.root).decode()} for o, h in self._heads.items()
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=".witness-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.state_path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def head(self, origin: str) -> tuple[int, bytes] | None:
        h = self._heads.get(origin)
        return (h.size, h.root) if h else None

    def add_checkpoint(self, signed_note: str, old_size: int, proof: Sequence[bytes]) -> str:
        """Verify a checkpoint against what this witness saw before; return a cosignature line."""
        try:
            n = note.parse_note(signed_note)
            cp = note.parse_checkpoint(n.text)
        except note.NoteError as exc:
            raise WitnessError(f"malformed checkpoint: {exc}") from None
        log = self.logs.get(cp.origin)
        if log is None:
            raise WitnessError(f"unknown log {cp.origin!r}")
        try:
            note.verify_note(n, [log])
        except note.NoteError as exc:
            raise WitnessError(f"checkpoint signature: {exc}") from None
        with self._lock:
            head = self._heads.get(cp.origin, _LogHead(0, merkle.EMPTY_ROOT))
            if old_size != head.size:
                raise WitnessConflictError(head.size)
            if cp.size < head.size:
                raise WitnessError("checkpoint rolls the log back")
            if cp.size == head.size:
                if cp.root_hash != head.root:
                    raise WitnessError("checkpoint forks the log (same size, different root)")
                if proof:
                    raise WitnessError("proof must be empty for an unchanged size")
            elif head.size == 0:
                if proof:
                    raise WitnessError("proof must be empty from an empty tree")
            elif not merkle.verify_consistency(head.size, cp.size, proof, head.root, cp.root_hash):
                raise WitnessError("consistency proof does not verify: the log forked or the proof is wrong")
            self._heads[cp.origin] = _LogHead(cp.size, cp.root_hash)
            self._save()
        cosig = note.cosign_checkpoint(n.text, self.name, self.signing_key, self.clock_s())
        return cosig.line()


def verify_checkpoint(
    signed_note: str,
    log_key: str | note.NoteVerifier,
    witness_keys: Sequence[str | note.NoteVerifier],
    quorum: int,
) -> note.Checkpoint:
    """Verify a checkpoint's log signature and a quorum of witness cosignatures; return it.

    The log's signature must verify and the origin must be the log key's name. `witness_keys` are
    cosignature (0x04) verifier keys; a witness is its key name, so two keys of one name count
    once. Every line by a listed key must verify (a forged line is an error, not a missing vote),
    a listed key may sign only one line, and at least `quorum` distinct witnesses must have
    cosigned (0 <= quorum <= number of witnesses). Lines by unlisted keys are ignored.
    """
    log = note.NoteVerifier.parse(log_key) if isinstance(log_key, str) else log_key
    n = note.verify_note(signed_note, [log])
    cp = note.parse_checkpoint(n.text)
    if cp.origin != log.name:
        raise note.NoteError("checkpoint origin does not match the log key name")
    verifiers: dict[tuple[str, bytes], note.NoteVerifier] = {}
    for k in witness_keys:
        v = note.NoteVerifier.parse(k) if isinstance(k, str) else k
        if v.alg != note.ALG_COSIGNATURE_V1:
            raise note.NoteError(f"{v.name}: not a cosignature (0x04) verifier key")
        verifiers[(v.name, v.key_id)] = v
    names = {v.name for v in verifiers.values()}
    if not 0 <= quorum <= len(names):
        raise note.NoteError(f"quorum {quorum} is not in 0..{len(names)} (the number of witnesses)")
    seen: set[tuple[str, bytes]] = set()
    cosigned: set[str] = set()
    for s in n.signatures:
        wv = verifiers.get((s.name, s.key_id))
        if wv is None:
            continue
        if (s.name, s.key_id) in seen:
            raise note.NoteError(f"duplicate cosignature by {s.name}")
        seen.add((s.name, s.key_id))
        note.verify_cosignature(note.Note(n.text, (s,)), wv)
        cosigned.add(wv.name)
    if len(cosigned) < quorum:
        raise note.NoteError(f"only {len(cosigned)} of the required {quorum} witness cosignatures")
    return cp
