"""Migration ledger_0002 on both databases: reservations made before it keep their charge, and are
refunded by the new rules (expiry, void) afterwards."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from nacl.signing import SigningKey

from civitas.db import alembic_config, migrate
from ledger import Account, CreateTransferStatus, Ledger, PendingState, Transfer, TransferFlags
from ledger.allowances import Allowances, PaymentRequest
from ledger.tables import allowance_reservations, allowance_spend

S = CreateTransferStatus
NS = 1_000_000_000
HOUR = 3600 * NS
T0 = 1_700_000_000 * NS
DEVICE = SigningKey(b"\x44" * 32)


def test_reservations_made_before_the_migration_are_carried_over(engine: sa.Engine) -> None:
    migrate(engine)  # written at head, then carried back to ledger_0001's format below
    now = [T0]
    led = Ledger(engine, clock=lambda: now[0], create=False)
    led.create_accounts([Account(id=i, ledger=1, code=1) for i in (1, 2)])
    led.create_transfers(
        [Transfer(id=1, debit_account_id=2, credit_account_id=1, amount=5_000, ledger=1, code=1)]
    )
    al = Allowances(led, clock=lambda: now[0])
    al.grant(allowance_id=7, account_id=1, device_public_key=bytes(DEVICE.verify_key), cap_micros=1_000,
             period_ns=HOUR, expires_at_ns=T0 + 24 * HOUR, ledger=1, code=3)  # fmt: skip
    # What the previous version wrote for two reservations (60 s and no timeout) and a payment:
    # the transfers and the period's spend counter, nothing else.
    pend = TransferFlags.PENDING
    made = led.create_transfers([
        Transfer(id=10, debit_account_id=1, credit_account_id=2, amount=400, user_data_128=7, timeout=60,
                 ledger=1, code=3, flags=pend),
        Transfer(id=11, debit_account_id=1, credit_account_id=2, amount=500, user_data_128=7, ledger=1,
                 code=3, flags=pend),
        Transfer(id=12, debit_account_id=1, credit_account_id=2, amount=100, user_data_128=7, ledger=1, code=3),
    ])  # fmt: skip
    assert [r.status for r in made] == [S.CREATED] * 3
    with engine.begin() as conn:
        conn.execute(allowance_spend.insert().values(allowance_id=7, period_index=0, spent_micros=1_000))
        command.downgrade(alembic_config(conn), "ledger_0001")
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(allowance_reservations).order_by(allowance_reservations.c.pending_id)
        ).all()
    assert [tuple(r) for r in rows] == [(10, 7, 0, 400, made[0].timestamp + 60 * NS), (11, 7, 0, 500, 0)]
    assert al.spent(7) == 1_000
    now[0] = made[0].timestamp + 60 * NS  # reservation 10 expires
    assert al.spent(7) == 600
    assert al.void(11, 13).status is S.CREATED and al.spent(7) == 100
    r = PaymentRequest(7, 14, 900, 2, now[0])
    assert al.pay(r, r.sign(DEVICE)).status is S.CREATED
    assert led.pending_state(10) is PendingState.EXPIRED and al.spent(7) == 1_000
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(allowance_reservations)).scalar_one() == 0
    assert led.audit().ok
