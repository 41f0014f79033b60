"""Kill -9 in the middle of a load: every acknowledged batch survives, none is partial, audit passes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from nacl.signing import SigningKey

from ledger import Ledger

from .crash_writer import batch_for

WRITER = Path(__file__).with_name("crash_writer.py")
KEY = bytes(range(32, 64))


def _run_and_kill(db: Path, min_acks: int, rng: random.Random) -> dict[int, int]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), KEY.hex()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: dict[int, int] = {}
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while len(acked) < min_acks and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            _, k, n = line.split()
            acked[int(k)] = int(n)
        time.sleep(rng.uniform(0, 0.05))  # land somewhere inside a later batch
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        for line in out.splitlines():  # acknowledgements printed before the kill landed
            _, k, n = line.split()
            acked[int(k)] = int(n)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, err
    assert len(acked) >= min_acks, err
    return acked


def test_acknowledged_batches_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(1)
    for round_ in range(3):
        acked = _run_and_kill(db, min_acks=3 + round_, rng=rng)
        with Ledger.open(f"sqlite:///{db}", signing_key=SigningKey(KEY), origin="crash.test/ledger") as led:
            size = led.tree_size
            for k, n in acked.items():
                found = led.lookup_transfers([t.id for t in batch_for(k)])
                assert len(found) == n, f"acknowledged batch {k} is missing or partial"
            # No batch is partial: every batch present on disk is complete.
            present = 0
            k = 1
            while True:
                expected = batch_for(k)
                found = led.lookup_transfers([t.id for t in expected])
                if not found:
                    break
                assert len(found) == len(expected), f"batch {k} is partial on disk"
                present += len(found)
                k += 1
            assert present == size
            report = led.audit()
            assert report.ok, report.problems
