"""`civitas ledger audit` and `civitas witness`: replay the ledger; run a checkpoint witness.

Registered through `civitas.cli.COMMAND_MODULES` (`register(subparsers)`).

`civitas ledger audit` opens the service database and replays it (balances from transfers,
debits = credits per ledger, balance limits, leaf hashes, Merkle root and frontier) and verifies the
latest checkpoint with the service's current and retired `log` keys, named by the origin the
checkpoint itself carries (the public URL may have changed since). Exit status 0 iff it passes.

`civitas witness --url URL --log-key VKEY --name NAME --key-file FILE --state FILE` polls a ledger's
public `/ledger/checkpoint` and `/ledger/proofs/consistency`, checks each new checkpoint against the
last one it cosigned (refusing rollbacks and forks) and prints the checkpoint with its cosignature.
With `--submit` it also posts each new cosignature to the ledger's `/ledger/cosignatures`, which
serves it to clients appended to the checkpoint (the ledger must list the witness's key in
`CIVITAS_LEDGER_WITNESS_KEYS`). The witness key is a base64url Ed25519 seed in `--key-file`
(created 0600 on first use).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from nacl.signing import SigningKey, VerifyKey

from civitas.settings import Settings
from ledger import Ledger, note
from ledger.audit import checkpoint_origin
from ledger.witness import Witness, WitnessConflictError, WitnessError

__all__ = ["load_or_create_witness_key", "register", "run_audit", "run_witness"]


def _log_verifiers(settings: Settings, origin: str) -> list[note.NoteVerifier]:
    from civitas.keys import KeyStore

    signing_key = settings.signing_key.get_secret_value() if settings.signing_key else None
    keys = KeyStore.open(settings.data_dir, signing_key)
    return [note.NoteVerifier.from_key(origin, VerifyKey(k.public)) for k in keys.all_public("log")]


def run_audit(
    settings: Settings, *, log_keys: Sequence[str] = (), as_json: bool = False, out: Any = None
) -> int:
    """Replay the service's ledger; print the report; 0 if it passes, 1 if not."""
    from civitas.db import create_engine, migrate
    from civitas.routers.ledger import log_origin

    out = out or _stdout()
    engine = create_engine(settings)
    migrate(engine)
    configured = log_origin(settings.public_url)
    led = Ledger(engine, origin=configured, create=False)
    try:
        # The signed checkpoint names the log; the public URL may have changed since it was written.
        origin = checkpoint_origin(led) or configured
        verifiers: list[str | note.NoteVerifier] = list(log_keys) or list(_log_verifiers(settings, origin))
        report = led.audit(verifiers)
    finally:
        led.close()
        engine.dispose()
    if origin != configured:
        report.notes.append(
            f"the log's origin {origin!r} (from its checkpoint) differs from {configured!r} "
            "(CIVITAS_PUBLIC_URL); the service signs new checkpoints under the latter"
        )
    if as_json:
        out.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        out.write(f"ledger audit: {'OK' if report.ok else 'FAILED'}\n")
        out.write(
            f"  accounts {report.accounts}, transfers {report.transfers}, tree size {report.tree_size}\n"
        )
        out.write(f"  root {report.root_hash or '-'}; checkpoint size {report.checkpoint_size}\n")
        for ledger_id, t in sorted(report.totals.items()):
            out.write(
                f"  ledger {ledger_id}: debits posted {t['debits_posted']} / credits posted {t['credits_posted']},"
                f" pending {t['debits_pending']} / {t['credits_pending']}\n"
            )
        for p in report.problems:
            out.write(f"  problem: {p}\n")
        for n in report.notes:
            out.write(f"  note: {n}\n")
    return 0 if report.ok else 1


def load_or_create_witness_key(path: Path) -> SigningKey:
    if path.exists():
        text = path.read_text().strip()
        return SigningKey(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.urlsafe_b64encode(bytes(key)).rstrip(b"=").decode() + "\n")
    return key


def run_witness(
    url: str,
    log_key: str,
    name: str,
    key_file: Path,
    state: Path,
    *,
    once: bool = False,
    submit: bool = False,
    interval_s: float = 5.0,
    http: httpx.Client | None = None,
    out: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Cosign the ledger's checkpoints as they grow; with `submit`, post each new cosignature to the
    ledger. With `once`, handle one checkpoint and return (0; 2 refused; 3 submission failed)."""
    out = out or _stdout()
    witness = Witness(name, load_or_create_witness_key(key_file), state, [log_key])
    origin = note.NoteVerifier.parse(log_key).name
    client = http or httpx.Client(timeout=30)
    base = url.rstrip("/") + "/"
    out.write(f"witness {name}: {witness.verifier_key}\n")
    submitted = -1  # the size whose cosignature the ledger last accepted from this process
    try:
        while True:
            cp_text = client.get(urljoin(base, "ledger/checkpoint")).raise_for_status().text
            cp = note.parse_checkpoint(note.parse_note(cp_text).text)
            head = witness.head(origin)
            old = head[0] if head else 0
            try:
                line = _cosign(client, base, witness, cp_text, old, cp.size)
            except WitnessConflictError as exc:
                line = _cosign(client, base, witness, cp_text, exc.known_size, cp.size)
            except WitnessError as exc:
                out.write(f"REFUSED checkpoint of size {cp.size}: {exc}\n")
                return 2
            if cp.size != old or once:
                out.write(note.add_signatures(cp_text, [line]))
                out.flush() if hasattr(out, "flush") else None
            submit_failed = False
            if submit and cp.size and cp.size != submitted:
                error = _submit(client, base, cp_text, line)
                if error is None:
                    submitted = cp.size
                else:
                    out.write(f"SUBMIT FAILED for size {cp.size}: {error}\n")
                    submit_failed = True
            if once:
                return 3 if submit_failed else 0
            sleep(interval_s)
    finally:
        if http is None:
            client.close()


def _submit(client: httpx.Client, base: str, cp_text: str, line: str) -> str | None:
    """Post a cosignature to the ledger; None on success, else why it failed (retried next poll)."""
    try:
        r = client.post(
            urljoin(base, "ledger/cosignatures"), json={"checkpoint": cp_text, "cosignature": line}
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if r.status_code in (200, 201):
        return None
    try:
        detail = str(r.json().get("detail") or r.json().get("title"))
    except ValueError:
        detail = r.text[:200]
    return f"HTTP {r.status_code}: {detail}"


def _cosign(client: httpx.Client, base: str, witness: Witness, cp_text: str, old: int, new: int) -> str:
    proof: list[bytes] = []
    if 0 < old < new:
        r = client.get(urljoin(base, "ledger/proofs/consistency"), params={"old_size": old, "new_size": new})
        proof = [base64.b64decode(h) for h in r.raise_for_status().json()["proof"]]
    return witness.add_checkpoint(cp_text, old, proof)


def _stdout() -> Any:
    import sys

    return sys.stdout


def _cmd_audit(args: argparse.Namespace) -> int:
    return run_audit(Settings(), log_keys=args.log_key or (), as_json=args.json)


def _cmd_witness(args: argparse.Namespace) -> int:
    return run_witness(
        args.url,
        args.log_key,
        args.name,
        args.key_file,
        args.state,
        once=args.once,
        submit=args.submit,
        interval_s=args.interval,
    )


def register(sub: Any) -> None:
    ledger_cmd = sub.add_parser("ledger", help="micropayment ledger", description="Ledger operations.")
    lsub = ledger_cmd.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    p = lsub.add_parser(
        "audit",
        help="replay the ledger and check balances, the Merkle log and the checkpoint",
        description="Replay the ledger store; exit status 0 iff everything checks out.",
    )
    p.add_argument(
        "--log-key", action="append", help="checkpoint verifier key (default: the service's log keys)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser(
        "witness",
        help="cosign a ledger's checkpoints (C2SP tlog-cosignature)",
        description="Poll a ledger's checkpoints, verify consistency, print cosigned checkpoints "
        "and, with --submit, hand the cosignatures back to the ledger.",
    )
    p.add_argument("--url", required=True, help="base URL of the ledger service")
    p.add_argument("--log-key", required=True, help="the ledger's C2SP verifier key (GET /ledger/log-key)")
    p.add_argument("--name", required=True, help="the witness's key name, e.g. witness.example.org")
    p.add_argument("--key-file", type=Path, required=True, help="witness key (created on first use, 0600)")
    p.add_argument("--state", type=Path, required=True, help="JSON file with the last cosigned size per log")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    p.add_argument("--once", action="store_true", help="handle the current checkpoint and exit")
    p.add_argument(
        "--submit",
        action="store_true",
        help="post each new cosignature to the ledger (POST /ledger/cosignatures) for its clients",
    )
    p.set_defaults(func=_cmd_witness)
