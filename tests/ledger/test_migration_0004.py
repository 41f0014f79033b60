"""Migration ledger_0004 on both databases: the balances table comes and goes; a HISTORY account
whose transfers predate it records from its next transfer on, and the audit accepts that."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from nacl.signing import SigningKey

from civitas.db import alembic_config, migrate
from ledger import Account, AccountBalance, AccountFlags, Ledger, Transfer

NS = 1_000_000_000
KEY = SigningKey(bytes(range(32)))


def _tr(tid: int, dr: int, cr: int, amount: int) -> Transfer:
    return Transfer(id=tid, debit_account_id=dr, credit_account_id=cr, amount=amount, ledger=1, code=1)


def test_upgrade_and_downgrade_of_the_balances_table(engine: sa.Engine) -> None:
    migrate(engine)
    now = [1_700_000_000 * NS]
    led = Ledger(engine, signing_key=KEY, clock=lambda: now[0], create=False)
    led.create_accounts(
        [Account(id=1, ledger=1, code=1, flags=AccountFlags.HISTORY), Account(id=2, ledger=1, code=1)]
    )
    first = led.create_transfers([_tr(1, 2, 1, 5)])[0].timestamp
    assert led.get_account_balances(1) == [AccountBalance(0, 0, 0, 5, first)]
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "ledger_0003")
    assert not sa.inspect(engine).has_table("ledger_account_balances")
    migrate(engine)
    assert sa.inspect(engine).has_table("ledger_account_balances")
    assert led.get_account_balances(1) == []  # nothing carried over: not rebuilt from the transfers
    now[0] += NS
    second = led.create_transfers([_tr(2, 1, 2, 2)])[0].timestamp
    assert led.get_account_balances(1) == [AccountBalance(0, 2, 0, 5, second)]
    assert led.audit().ok  # records start after the migration: earlier transfers have none
