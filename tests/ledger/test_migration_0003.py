"""Migration ledger_0003 on both databases: transfers, balances and account histories written in one
layout read back the same from the other, in both directions, and the ledger keeps working."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from alembic import command
from nacl.signing import SigningKey

from civitas.db import alembic_config, migrate
from ledger import BATCH_MAX, Account, AccountFlags, Ledger, LedgerError, Transfer, TransferFlags

F = TransferFlags
NS = 1_000_000_000
KEY = SigningKey(bytes(range(32)))


def _fill(led: Ledger, now: list[int], bulk: int = 0) -> list[int]:
    """Mixed batches (pending, post, void, a balance limit), then ``bulk`` plain transfers."""
    led.create_accounts([Account(id=i, ledger=1, code=1, user_data_64=(1 << 64) - i) for i in range(1, 7)])
    led.create_accounts([Account(id=7, ledger=1, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)])
    rng = random.Random(3)
    next_id = 1
    for k in range(15):
        batch = []
        for _ in range(rng.randint(1, 12)):
            dr, cr = rng.sample(range(1, 8), 2)
            flags = rng.choice([0, 0, 0, int(F.PENDING)])
            batch.append(Transfer(id=next_id, debit_account_id=dr, credit_account_id=cr, amount=rng.randint(0, 50),
                                  user_data_128=(1 << 127) + next_id, ledger=1, code=2, flags=flags))  # fmt: skip
            next_id += 1
        if k % 4 == 3:
            pending = [t for t in led.lookup_transfers(list(range(1, next_id))) if t.flags & F.PENDING]
            if pending:
                resolve = F.POST_PENDING_TRANSFER if k % 8 == 3 else F.VOID_PENDING_TRANSFER
                batch.append(Transfer(id=next_id, pending_id=pending[-1].id, flags=resolve, amount=0))
                next_id += 1
        led.create_transfers(batch)
        now[0] += NS
    for start in range(0, bulk, 1000):
        plain = []
        for _ in range(min(1000, bulk - start)):
            dr, cr = rng.sample(range(1, 7), 2)
            plain.append(
                Transfer(id=next_id, debit_account_id=dr, credit_account_id=cr, amount=1, ledger=1, code=3)
            )
            next_id += 1
        led.create_transfers(plain)
        now[0] += NS
    return list(range(1, next_id))


def _snapshot(led: Ledger, ids: list[int]) -> tuple[object, ...]:
    transfers = led.lookup_transfers(ids)
    histories = [
        (led.get_account_transfers(a, limit=BATCH_MAX), led.get_account_transfers(a, limit=7, reverse=True))
        for a in range(1, 8)
    ]
    leaf_indexes = [led.leaf_index(t.timestamp) for t in transfers]
    log = led.log_state()  # its commit_seq moves: a migration drops running ledgers' caches
    return (
        led.lookup_accounts(list(range(1, 8))),
        transfers,
        histories,
        leaf_indexes,
        log.tree_size,
        log.frontier,
    )


# 2,500 plain transfers more: the upgrade then writes its rows in more than one chunk (2,000 ids)
@pytest.mark.parametrize("bulk", [0, 2_500])
def test_data_survives_the_round_trip_through_the_previous_layout(engine: sa.Engine, bulk: int) -> None:
    migrate(engine)
    now = [1_700_000_000 * NS]
    led = Ledger(engine, signing_key=KEY, clock=lambda: now[0], create=False)
    ids = _fill(led, now, bulk)
    before = _snapshot(led, ids)
    assert len(before[1]) > 60 and led.audit().ok  # type: ignore[arg-type]

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "ledger_0002")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM ledger_transfers").scalar_one() == len(before[1])  # type: ignore[arg-type]
        cols = {c["name"] for c in sa.inspect(conn).get_columns("ledger_accounts")}
        assert {"debits_posted", "credits_posted", "flags"} <= cols
        assert not sa.inspect(conn).has_table("ledger_transfer_blocks")

    migrate(engine)
    again = Ledger(engine, signing_key=KEY, clock=lambda: now[0], create=False)
    assert _snapshot(again, ids) == before
    assert again.audit().ok
    # The chains go on from the migrated rows.
    res = again.create_transfers(
        [Transfer(id=10_000, debit_account_id=1, credit_account_id=2, amount=1, ledger=1, code=2)]
    )
    assert res[0].status == 0
    assert again.get_account_transfers(1, limit=1, reverse=True)[0].id == 10_000
    assert [t.id for t in again.get_account_transfers(2, limit=BATCH_MAX)][-1] == 10_000
    assert again.audit().ok


def test_a_database_in_the_earlier_layout_is_not_opened_without_migrating(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "ledger_0002")
    with pytest.raises(LedgerError, match="migrations"):
        Ledger(engine, signing_key=KEY)
    migrate(engine)
    Ledger(engine, signing_key=KEY).close()
