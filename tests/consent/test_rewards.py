"""Rewards: real-time ledger transfers, exactly once per reading, stopping at withdrawal."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import sqlalchemy as sa

from consent import tables as t
from consent.devices import DeviceKind, register_device
from consent.gateway import Gateway, GatewayConfig
from consent.rewards import REWARD_CODE, RewardConfig, RewardPayer, reward_transfer_id
from consent.store import ConsentStore
from ledger import Account, CreateTransferResult, Ledger, Transfer

from .support import HOUR, MIN, T0, Clock, batch, device_key, readings, terms

CITY, ALICE = 1, 2
RATES = {"pd:Location": 10, "pd:VehicleUsage": 25}


class FlakySink:
    """Passes transfers to the ledger, then 'loses the answer' the first N times (a crash)."""

    def __init__(self, ledger: Ledger, failures: int) -> None:
        self.ledger = ledger
        self.failures = failures

    def create_transfers(self, transfers: Sequence[Transfer]) -> Sequence[CreateTransferResult]:
        results = self.ledger.create_transfers(transfers)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("connection lost after commit")
        return results


@pytest.fixture
def ledger(cengine: sa.Engine, clock: Clock) -> Ledger:
    led = Ledger(cengine, clock=clock)
    led.create_accounts([Account(id=CITY, ledger=1, code=1), Account(id=ALICE, ledger=1, code=2)])
    register_device(
        cengine,
        public_key=bytes(device_key(1).verify_key),
        kind=DeviceKind.PERSONAL,
        owner="pseudo-alice",
        reward_account_id=ALICE,
        now_ns=T0,
        device_id="dev-1",
    )
    return led


def _gateway(engine: sa.Engine, clock: Clock, sink: object) -> Gateway:
    config = RewardConfig(incentive_account_id=CITY, rates_micros=RATES)
    payer = RewardPayer(engine, sink, config)  # type: ignore[arg-type]
    return Gateway(engine, clock=clock, config=GatewayConfig(rewards=config), payer=payer)


def _balance(ledger: Ledger, account: int) -> int:
    (a,) = ledger.lookup_accounts([account])
    return a.credits_posted - a.debits_posted


def test_accepted_readings_are_paid_in_real_time(store: ConsentStore, ledger: Ledger, clock: Clock) -> None:
    store.give(terms(categories=("pd:Location", "pd:VehicleUsage")))
    clock.advance(HOUR)
    gateway = _gateway(store.engine, clock, ledger)
    items = readings("vehicle.location", [T0 + i * MIN for i in range(3)]) + readings(
        "vehicle.speed_kmh", [T0]
    )
    signed = batch("dev-1", device_key(1), items)
    (result,) = gateway.ingest([signed])
    assert result.reward_micros == 3 * 10 + 25
    assert _balance(ledger, ALICE) == 55 and _balance(ledger, CITY) == -55
    transfers = ledger.get_account_transfers(ALICE)
    assert sorted(x.amount for x in transfers) == [25, 30]  # one transfer per (batch, category)
    assert all(x.code == REWARD_CODE and x.debit_account_id == CITY for x in transfers)
    assert {x.user_data_128 for x in transfers} == {result.batch_id}


def test_same_batch_twice_pays_once(store: ConsentStore, ledger: Ledger, clock: Clock) -> None:
    store.give(terms())
    clock.advance(HOUR)
    gateway = _gateway(store.engine, clock, ledger)
    signed = batch("dev-1", device_key(1), readings("vehicle.location", [T0, T0 + MIN]))
    gateway.ingest([signed])
    gateway.ingest([signed])
    gateway.pay_pending()
    assert _balance(ledger, ALICE) == 20


def test_lost_ledger_answer_is_retried_without_paying_twice(
    store: ConsentStore, ledger: Ledger, clock: Clock
) -> None:
    store.give(terms())
    clock.advance(HOUR)
    sink = FlakySink(ledger, failures=1)
    gateway = _gateway(store.engine, clock, sink)
    signed = batch("dev-1", device_key(1), readings("vehicle.location", [T0, T0 + MIN]))
    with pytest.raises(ConnectionError):
        gateway.ingest([signed])  # readings committed, transfer committed, answer lost
    assert _balance(ledger, ALICE) == 20
    gateway.ingest([signed])  # the device retries: duplicate, nothing new owed
    report = gateway.pay_pending()  # the sweeper finds the pending reward: EXISTS -> paid
    assert report is not None and report.paid == 1
    assert _balance(ledger, ALICE) == 20
    assert gateway.pay_pending() is not None and _balance(ledger, ALICE) == 20
    with store.engine.connect() as conn:
        assert set(conn.execute(sa.select(t.batch_counts.c.reward_state)).scalars()) == {"paid"}


def test_rewards_stop_after_withdrawal(store: ConsentStore, ledger: Ledger, clock: Clock) -> None:
    given = store.give(terms())
    clock.advance(HOUR)
    gateway = _gateway(store.engine, clock, ledger)
    gateway.ingest([batch("dev-1", device_key(1), readings("vehicle.location", [clock() - 2 * MIN]))])
    assert _balance(ledger, ALICE) == 10
    store.withdraw(given.record_id, subject="pseudo-alice")
    clock.advance(MIN)
    (r,) = gateway.ingest(
        [batch("dev-1", device_key(1), readings("vehicle.location", [clock(), clock() - 1]))]
    )
    assert r.accepted == 0 and r.reward_micros == 0
    assert _balance(ledger, ALICE) == 10


def test_burnt_transfer_id_moves_to_a_new_attempt(
    store: ConsentStore, ledger: Ledger, clock: Clock, cengine: sa.Engine
) -> None:
    """A transfer that fails for good (closed/missing account) is retried under a fresh id."""
    register_device(
        cengine,
        public_key=bytes(device_key(3).verify_key),
        kind=DeviceKind.PERSONAL,
        owner="pseudo-carol",
        reward_account_id=77,
        now_ns=T0,
        device_id="dev-3",
    )
    store.give(terms("pseudo-carol"))
    clock.advance(HOUR)
    gateway = _gateway(cengine, clock, ledger)
    signed = batch("dev-3", device_key(3), readings("vehicle.location", [T0]))
    gateway.ingest([signed])  # account 77 does not exist yet: CREDIT_ACCOUNT_NOT_FOUND
    ledger.create_accounts([Account(id=77, ledger=1, code=2)])
    report = gateway.pay_pending()
    assert report is not None and report.paid == 1
    assert _balance(ledger, 77) == 10
    bid = signed.parse_unverified().batch_id
    assert ledger.lookup_transfers([reward_transfer_id(bid, "pd:Location", 1)])[0].amount == 10


def test_no_reward_account_no_transfer(
    store: ConsentStore, ledger: Ledger, clock: Clock, cengine: sa.Engine
) -> None:
    register_device(
        cengine,
        public_key=bytes(device_key(4).verify_key),
        kind=DeviceKind.PERSONAL,
        owner="pseudo-dan",
        now_ns=T0,
        device_id="dev-4",
    )
    store.give(terms("pseudo-dan"))
    clock.advance(HOUR)
    (r,) = _gateway(cengine, clock, ledger).ingest(
        [batch("dev-4", device_key(4), readings("vehicle.location", [T0]))]
    )
    assert r.accepted == 1 and r.reward_micros == 0


def test_transfer_ids_are_deterministic() -> None:
    assert reward_transfer_id(5, "pd:Location") == reward_transfer_id(5, "pd:Location", 0)
    ids = {
        reward_transfer_id(b, c, a)
        for b in (1, 2)
        for c in ("pd:Location", "pd:VehicleUsage")
        for a in (0, 1)
    }
    assert len(ids) == 8 and all(0 < i < 2**128 - 1 for i in ids)
