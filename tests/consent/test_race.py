"""Withdrawal racing with concurrent ingest: nothing after the withdrawal time is shared.

Ingest threads push batches stamped with the real clock while the citizen withdraws. The
gateway decides each batch under a shared lock on the citizen's consent row and the withdrawal
takes its time only once it holds that row, so a batch is either decided entirely before the
withdrawal (its readings are older than T) or entirely after it (nothing after T is accepted).
Sharing re-checks at read time, so after the withdrawal nothing of that consent is shared.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import sqlalchemy as sa

from consent import tables as t
from consent.batches import Batch, Reading, sign_batch
from consent.devices import DeviceKind, register_device
from consent.gateway import BatchResult, Gateway
from consent.minimise import DEFAULT_GRID
from consent.sharing import analytics_readings_select, register_recipient, share_page
from consent.store import ConsentStore

from .support import HOUR, device_key, receipt_signer, terms

AGENCY = "transport-agency"
THREADS = 3


def test_withdrawal_races_with_ingest(cengine: sa.Engine) -> None:
    offset = [2 * HOUR]  # give consent "two hours ago", then run on the real clock
    store = ConsentStore(cengine, signer=receipt_signer(), clock=lambda: time.time_ns() - offset[0])
    now = time.time_ns()
    register_recipient(
        cengine, client_id=AGENCY, name="Transport", purposes=["dpv:PublicBenefit"], now_ns=now
    )
    for n in range(THREADS):
        register_device(
            cengine,
            public_key=bytes(device_key(n).verify_key),
            kind=DeviceKind.PERSONAL,
            owner="pseudo-alice",
            now_ns=now,
            device_id=f"dev-{n}",
        )
    given = store.give(terms(valid_from_ns=now - 3 * HOUR, valid_until_ns=now + 24 * HOUR))
    offset[0] = 0

    gateway = Gateway(cengine)
    lat, lon = DEFAULT_GRID.centre_of("Market")
    stop = threading.Event()
    log: list[tuple[int, int, BatchResult]] = []  # (min ts, max ts, result)
    errors: list[BaseException] = []

    def ingest(n: int) -> None:
        rng = random.Random(n)
        try:
            while not stop.is_set():
                base = time.time_ns()
                items = tuple(
                    Reading("vehicle.location", base - rng.randrange(0, 50_000_000), 1.0, lat, lon)
                    for _ in range(25)
                )
                signed = sign_batch(Batch(uuid.uuid4().int, f"dev-{n}", base, items), device_key(n))
                (result,) = gateway.ingest([signed])
                log.append((min(r.ts_ns for r in items), max(r.ts_ns for r in items), result))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(THREADS)]
    for th in threads:
        th.start()
    while len(log) < 10 and not errors:
        time.sleep(0.01)
    (withdrawal,) = store.withdraw(given.record_id, subject="pseudo-alice")
    withdrawn_at = withdrawal.at_ns
    deadline = time.monotonic() + 30
    while (
        sum(1 for lo, _, _ in list(log) if lo > withdrawn_at) < 5
        and not errors
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    stop.set()
    for th in threads:
        th.join()
    assert not errors, errors

    before = [r for lo, hi, r in log if hi < withdrawn_at]
    after = [r for lo, hi, r in log if lo > withdrawn_at]
    assert sum(r.accepted for r in before) > 0  # the race really had consented traffic
    assert len(after) >= 5
    assert all(r.accepted == 0 for r in after)  # nothing stamped after T was accepted

    with cengine.connect() as conn:
        stored = conn.execute(sa.select(t.readings.c.ts_ns)).scalars().all()
    assert stored and all(ts < withdrawn_at for ts in stored)

    page = share_page(
        cengine,
        recipient=AGENCY,
        purpose="dpv:PublicBenefit",
        cursor=None,
        limit=5_000,
        now_ns=time.time_ns(),
    )
    assert page.readings == []
    stmt = analytics_readings_select(recipient=AGENCY, purpose="dpv:PublicBenefit", start_ns=0, end_ns=2**62)
    with cengine.connect() as conn:
        assert conn.execute(stmt).all() == []
