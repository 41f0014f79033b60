"""Property test: the engine agrees with the reference model on random batches, step after step."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ledger.types import AMOUNT_MAX, BALANCE_MAX, Account, AccountFlags, Transfer, TransferFlags

from .memledger import MemLedger
from .model import Model

F = TransferFlags
NS = 1_000_000_000
ACCOUNT_IDS = [1, 2, 3, 4, 5, 6, 7]  # 7 is created only by the rule (until then: not found)
ACCOUNT_LEDGER = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 1}
ACCOUNT_FLAGS = {
    1: 0,
    2: int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
    3: int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS),
    4: int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.HISTORY),
    5: int(AccountFlags.HISTORY),
    6: int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
    7: 0,
}
FLAG_CHOICES = [
    0, 0, 0,
    int(F.PENDING), int(F.PENDING),
    int(F.POST_PENDING_TRANSFER), int(F.POST_PENDING_TRANSFER),
    int(F.VOID_PENDING_TRANSFER),
    int(F.BALANCING_DEBIT), int(F.BALANCING_CREDIT), int(F.BALANCING_DEBIT | F.PENDING),
    int(F.PENDING | F.CLOSING_DEBIT), int(F.PENDING | F.CLOSING_CREDIT),
    int(F.PENDING | F.POST_PENDING_TRANSFER),
]  # fmt: skip


@st.composite
def noisy_transfer(draw: st.DrawFn) -> Transfer:
    """Any field may be wrong: exercises the validation statuses."""
    flags = draw(st.sampled_from(FLAG_CHOICES))
    resolving = flags & (F.POST_PENDING_TRANSFER | F.VOID_PENDING_TRANSFER)
    dr = draw(st.sampled_from([0, 8, *ACCOUNT_IDS]))
    cr = draw(st.sampled_from([0, 8, *ACCOUNT_IDS]))
    return Transfer(
        id=draw(st.integers(0, 60)),
        debit_account_id=dr,
        credit_account_id=cr,
        amount=draw(st.one_of(st.integers(0, 60), st.sampled_from([AMOUNT_MAX, BALANCE_MAX]))),
        pending_id=draw(st.integers(1, 60)) if resolving else draw(st.sampled_from([0, 0, 0, 5])),
        user_data_64=draw(st.sampled_from([0, 0, 3])),
        timeout=draw(st.sampled_from([0, 1, 3, 2])),
        ledger=draw(st.sampled_from([0, 1, 2])),
        code=draw(st.sampled_from([1, 1, 0, 2])),
        flags=flags,
    )


@st.composite
def wellformed_transfer(draw: st.DrawFn) -> Transfer:
    """A plausible transfer between existing accounts of one ledger (mostly succeeds)."""
    kind = draw(
        st.sampled_from(["single", "single", "single", "pending", "post", "post", "void", "balancing"])
    )
    # Pending transfers take ids 1..15 and post/void target them, so resolutions meet real pendings.
    tid = draw(st.integers(1, 15)) if kind == "pending" else draw(st.integers(1, 60))
    ledger = draw(st.sampled_from([1, 1, 1, 2]))
    pool = [a for a in ACCOUNT_IDS[:-1] if ACCOUNT_LEDGER[a] == ledger]
    dr, cr = draw(st.permutations(pool))[:2]
    amount = draw(st.integers(0, 40))
    if kind in ("post", "void"):
        flags = int(F.POST_PENDING_TRANSFER if kind == "post" else F.VOID_PENDING_TRANSFER)
        if kind == "post":
            amount = draw(st.one_of(st.integers(0, 40), st.just(AMOUNT_MAX)))
        else:
            amount = draw(st.sampled_from([0, 0, amount]))
        return Transfer(id=tid, pending_id=draw(st.integers(1, 15)), amount=amount, flags=flags)
    flags = 0
    timeout = 0
    if kind == "pending":
        flags = int(F.PENDING) | draw(st.sampled_from([0, 0, 0, int(F.CLOSING_DEBIT), int(F.CLOSING_CREDIT)]))
        timeout = draw(st.sampled_from([0, 0, 1, 3]))
    if kind in ("balancing", "pending") and ledger == 1 and draw(st.booleans()):
        dr = draw(st.sampled_from([2, 4]))  # accounts with a debit limit and funds
        cr = 1
    if kind == "balancing":
        flags = draw(
            st.sampled_from(
                [int(F.BALANCING_DEBIT), int(F.BALANCING_CREDIT), int(F.BALANCING_DEBIT | F.PENDING)]
            )
        )
        amount = draw(st.one_of(st.integers(0, 40), st.just(AMOUNT_MAX)))
    return Transfer(
        id=tid, debit_account_id=dr, credit_account_id=cr, amount=amount, timeout=timeout, ledger=ledger, code=1,
        user_data_64=draw(st.sampled_from([0, 0, 3])), flags=flags,
    )  # fmt: skip


@st.composite
def plain_transfer(draw: st.DrawFn) -> Transfer:
    """A transfer without flags, mostly with a fresh id: whole batches of them take the engine's
    whole-batch path unless a balance limit, an id or an account says otherwise."""
    ledger = draw(st.sampled_from([1, 1, 1, 2]))
    pool = [a for a in ACCOUNT_IDS if ACCOUNT_LEDGER[a] == ledger]
    dr, cr = draw(st.permutations(pool))[:2]
    return Transfer(
        id=draw(st.one_of(st.integers(100, 10_000), st.integers(1, 60))),
        debit_account_id=dr,
        credit_account_id=cr,
        amount=draw(st.one_of(st.integers(0, 30), st.just(BALANCE_MAX))),
        user_data_128=draw(st.sampled_from([0, 0, 1 << 100])),
        ledger=ledger,
        code=1,
    )


@st.composite
def transfers(draw: st.DrawFn) -> Transfer:
    t = draw(st.one_of(wellformed_transfer(), wellformed_transfer(), wellformed_transfer(), noisy_transfer()))
    if draw(st.integers(0, 5)) == 0:
        t.flags = int(t.flags) | int(F.LINKED)
    return t


class EngineVsModel(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.engine = MemLedger(now_ns=1_000 * NS)
        self.model = Model()
        self.created_accounts: set[int] = set()
        for aid in ACCOUNT_IDS[:-1]:
            self.create_account(aid)
        funding = [
            Transfer(id=1001, debit_account_id=1, credit_account_id=2, amount=100, ledger=1, code=1),
            Transfer(id=1002, debit_account_id=1, credit_account_id=4, amount=100, ledger=1, code=1),
            Transfer(id=1003, debit_account_id=3, credit_account_id=1, amount=100, ledger=1, code=1),
        ]
        self.create_transfers(funding)

    @rule(account_id=st.sampled_from(ACCOUNT_IDS))
    def create_account(self, account_id: int) -> None:
        acc = Account(
            id=account_id, ledger=ACCOUNT_LEDGER[account_id], code=1, flags=ACCOUNT_FLAGS[account_id]
        )
        res = self.engine.create_accounts([acc])
        if account_id not in self.created_accounts:
            self.model.add_account(account_id, ACCOUNT_LEDGER[account_id], ACCOUNT_FLAGS[account_id])
            self.created_accounts.add(account_id)
            assert res[0].status == 0
        else:
            assert res[0].status.name == "EXISTS"
        self.model.s.last_ts = self.engine.last_ts

    @precondition(lambda self: self.created_accounts)
    @rule(batch=st.lists(transfers(), min_size=1, max_size=6))
    def create_transfers(self, batch: list[Transfer]) -> None:
        got = [r.status for r in self.engine.create_transfers(batch)]
        want = self.model.create_transfers(batch, self.engine.now)
        assert got == want, (batch, got, want)
        assert self.model.s.last_ts == self.engine.last_ts

    @precondition(lambda self: self.created_accounts)
    @rule(batch=st.lists(plain_transfer(), min_size=1, max_size=10))
    def create_plain_transfers(self, batch: list[Transfer]) -> None:
        self.create_transfers(batch)

    @rule(seconds=st.integers(0, 4))
    def advance_clock(self, seconds: int) -> None:
        self.engine.now += seconds * NS

    @invariant()
    def balances_match_the_model(self) -> None:
        for aid, ma in self.model.s.accounts.items():
            row = self.engine.accounts[aid]
            assert (row[1], row[2], row[3], row[4]) == (ma.dp, ma.dpo, ma.cp, ma.cpo), aid
            assert row[10] == int(ma.flags), aid

    @invariant()
    def transfers_match_the_model(self) -> None:
        assert set(self.engine.transfers) == set(self.model.s.transfers)
        for tid, t in self.model.s.transfers.items():
            assert self.engine.transfers[tid][1:12] == t.as_row()[1:12], tid
        assert {k: v[1] for k, v in self.engine.pending.items()} == {
            k: int(v) for k, v in self.model.s.state.items()
        }
        assert set(self.engine.failed) == self.model.s.failed

    @invariant()
    def history_matches_the_model(self) -> None:
        # HISTORY accounts (4, 5): the balances after each of their transfers, none after expiries.
        assert self.engine.balances == self.model.s.balances

    @invariant()
    def debits_equal_credits_and_limits_hold(self) -> None:
        totals: dict[int, list[int]] = {}
        for row in self.engine.accounts.values():
            t = totals.setdefault(row[8], [0, 0, 0, 0])
            for k in range(4):
                t[k] += row[1 + k]
            assert min(row[1:5]) >= 0
            if row[10] & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS:
                assert row[1] + row[2] <= row[4]
            if row[10] & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS:
                assert row[3] + row[4] <= row[2]
        for dp, dpo, cp, cpo in totals.values():
            assert dp == cp and dpo == cpo


EngineVsModel.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestEngineVsModel = EngineVsModel.TestCase
