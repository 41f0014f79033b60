"""The pure engine: every status code it returns, linked chains, two-phase, balancing, idempotency."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import engine as eng
from ledger.types import (
    AMOUNT_MAX,
    BALANCE_MAX,
    BATCH_MAX,
    ID_MAX,
    Account,
    AccountFlags,
    BatchTooLargeError,
    CreateAccountStatus,
    CreateTransferStatus,
    LedgerInvariantError,
    LedgerValueError,
    PendingState,
    Transfer,
    TransferFlags,
)

from .memledger import MemLedger

S = CreateTransferStatus
A = CreateAccountStatus
F = TransferFlags
NS = 1_000_000_000


def setup(*extra: Account) -> MemLedger:
    m = MemLedger()
    accounts = [
        Account(id=1, ledger=1, code=10),
        Account(id=2, ledger=1, code=10),
        Account(id=3, ledger=2, code=10),
        Account(id=4, ledger=1, code=10, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
        Account(id=5, ledger=1, code=10, flags=AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS),
        *extra,
    ]
    assert all(s is A.CREATED for s in m.account_statuses(accounts))
    return m


def tr(tid: int, dr: int = 1, cr: int = 2, amount: int = 10, **kw: int) -> Transfer:
    return Transfer(id=tid, debit_account_id=dr, credit_account_id=cr, amount=amount, ledger=kw.pop("ledger", 1),
                    code=kw.pop("code", 1), **kw)  # fmt: skip


# ------------------------------------------------------------------------------------------
# Accounts


def test_account_created_and_exists() -> None:
    m = MemLedger()
    a = Account(id=7, ledger=1, code=1, user_data_64=5)
    r1 = m.create_accounts([a])
    r2 = m.create_accounts([a])
    assert r1[0].status is A.CREATED and r2[0].status is A.EXISTS
    assert r2[0].timestamp == r1[0].timestamp  # EXISTS reports the original timestamp
    assert m.account(7).timestamp == r1[0].timestamp


@pytest.mark.parametrize(
    ("account", "status"),
    [
        (Account(id=9, ledger=1, code=1, timestamp=5), A.TIMESTAMP_MUST_BE_ZERO),
        (Account(id=9, ledger=1, code=1, flags=AccountFlags.IMPORTED), A.RESERVED_FLAG),
        (Account(id=9, ledger=1, code=1, flags=1 << 12), A.RESERVED_FLAG),
        (Account(id=0, ledger=1, code=1), A.ID_MUST_NOT_BE_ZERO),
        (Account(id=ID_MAX, ledger=1, code=1), A.ID_MUST_NOT_BE_INT_MAX),
        (Account(id=1, ledger=1, code=10, flags=AccountFlags.HISTORY), A.EXISTS_WITH_DIFFERENT_FLAGS),
        (Account(id=1, ledger=1, code=10, user_data_128=1), A.EXISTS_WITH_DIFFERENT_USER_DATA_128),
        (Account(id=1, ledger=1, code=10, user_data_64=1), A.EXISTS_WITH_DIFFERENT_USER_DATA_64),
        (Account(id=1, ledger=1, code=10, user_data_32=1), A.EXISTS_WITH_DIFFERENT_USER_DATA_32),
        (Account(id=1, ledger=2, code=10), A.EXISTS_WITH_DIFFERENT_LEDGER),
        (Account(id=1, ledger=1, code=11), A.EXISTS_WITH_DIFFERENT_CODE),
        (Account(id=1, ledger=1, code=10), A.EXISTS),
        (
            Account(
                id=9,
                ledger=1,
                code=1,
                flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
                | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS,
            ),
            A.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        ),
        (Account(id=9, ledger=1, code=1, debits_pending=1), A.DEBITS_PENDING_MUST_BE_ZERO),
        (Account(id=9, ledger=1, code=1, debits_posted=1), A.DEBITS_POSTED_MUST_BE_ZERO),
        (Account(id=9, ledger=1, code=1, credits_pending=1), A.CREDITS_PENDING_MUST_BE_ZERO),
        (Account(id=9, ledger=1, code=1, credits_posted=1), A.CREDITS_POSTED_MUST_BE_ZERO),
        (Account(id=9, ledger=0, code=1), A.LEDGER_MUST_NOT_BE_ZERO),
        (Account(id=9, ledger=1, code=0), A.CODE_MUST_NOT_BE_ZERO),
    ],
)
def test_account_statuses(account: Account, status: CreateAccountStatus) -> None:
    m = setup()
    assert m.account_statuses([account]) == [status]
    if status is not A.EXISTS:
        assert m.accounts.get(9) is None


def test_account_linked_chain_all_or_nothing() -> None:
    m = MemLedger()
    got = m.account_statuses(
        [
            Account(id=1, ledger=1, code=1, flags=AccountFlags.LINKED),
            Account(id=2, ledger=1, code=0, flags=AccountFlags.LINKED),
            Account(id=3, ledger=1, code=1),
            Account(id=4, ledger=1, code=1),
        ]
    )
    assert got == [A.LINKED_EVENT_FAILED, A.CODE_MUST_NOT_BE_ZERO, A.LINKED_EVENT_FAILED, A.CREATED]
    assert set(m.accounts) == {4}


def test_account_chain_open_at_end_of_batch() -> None:
    m = MemLedger()
    got = m.account_statuses(
        [
            Account(id=1, ledger=1, code=1, flags=AccountFlags.LINKED),
            Account(id=2, ledger=1, code=1, flags=AccountFlags.LINKED),
        ]
    )
    assert got == [A.LINKED_EVENT_FAILED, A.LINKED_EVENT_CHAIN_OPEN]
    assert m.accounts == {}


def test_account_range_errors_raise_before_anything() -> None:
    m = MemLedger()
    with pytest.raises(LedgerValueError):
        m.create_accounts([Account(id=1, ledger=1, code=1), Account(id=2, ledger=1 << 32, code=1)])
    assert m.accounts == {}


# ------------------------------------------------------------------------------------------
# Transfers: validation statuses


@pytest.mark.parametrize(
    ("transfer", "status"),
    [
        (tr(100, timestamp=1), S.TIMESTAMP_MUST_BE_ZERO),
        (tr(100, flags=F.IMPORTED), S.RESERVED_FLAG),
        (tr(100, flags=1 << 12), S.RESERVED_FLAG),
        (tr(0), S.ID_MUST_NOT_BE_ZERO),
        (tr(ID_MAX), S.ID_MUST_NOT_BE_INT_MAX),
        (tr(100, flags=F.PENDING | F.POST_PENDING_TRANSFER, pending_id=1), S.FLAGS_ARE_MUTUALLY_EXCLUSIVE),
        (tr(100, flags=F.PENDING | F.VOID_PENDING_TRANSFER, pending_id=1), S.FLAGS_ARE_MUTUALLY_EXCLUSIVE),
        (
            tr(100, flags=F.POST_PENDING_TRANSFER | F.VOID_PENDING_TRANSFER, pending_id=1),
            S.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        ),
        (
            tr(100, flags=F.POST_PENDING_TRANSFER | F.BALANCING_DEBIT, pending_id=1),
            S.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        ),
        (
            tr(100, flags=F.VOID_PENDING_TRANSFER | F.CLOSING_CREDIT, pending_id=1),
            S.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        ),
        (tr(100, dr=0), S.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO),
        (tr(100, dr=ID_MAX), S.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX),
        (tr(100, cr=0), S.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO),
        (tr(100, cr=ID_MAX), S.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX),
        (tr(100, dr=1, cr=1), S.ACCOUNTS_MUST_BE_DIFFERENT),
        (tr(100, pending_id=5), S.PENDING_ID_MUST_BE_ZERO),
        (tr(100, timeout=5), S.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER),
        (tr(100, flags=F.CLOSING_DEBIT), S.CLOSING_TRANSFER_MUST_BE_PENDING),
        (tr(100, ledger=0), S.LEDGER_MUST_NOT_BE_ZERO),
        (tr(100, code=0), S.CODE_MUST_NOT_BE_ZERO),
        (tr(100, dr=99), S.DEBIT_ACCOUNT_NOT_FOUND),
        (tr(100, cr=99), S.CREDIT_ACCOUNT_NOT_FOUND),
        (tr(100, dr=1, cr=3), S.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER),
        (tr(100, ledger=2), S.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS),
        (tr(100, dr=4, cr=1), S.EXCEEDS_CREDITS),
        (tr(100, dr=1, cr=5), S.EXCEEDS_DEBITS),
        (tr(100, flags=F.POST_PENDING_TRANSFER), S.PENDING_ID_MUST_NOT_BE_ZERO),
        (tr(100, flags=F.POST_PENDING_TRANSFER, pending_id=ID_MAX), S.PENDING_ID_MUST_NOT_BE_INT_MAX),
        (tr(100, flags=F.POST_PENDING_TRANSFER, pending_id=100), S.PENDING_ID_MUST_BE_DIFFERENT),
        (
            tr(100, flags=F.POST_PENDING_TRANSFER, pending_id=7, timeout=1),
            S.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
        ),
        (tr(100, flags=F.VOID_PENDING_TRANSFER, pending_id=12345), S.PENDING_TRANSFER_NOT_FOUND),
        (
            tr(100, flags=F.POST_PENDING_TRANSFER, pending_id=1, dr=ID_MAX),
            S.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX,
        ),
    ],
)
def test_transfer_statuses(transfer: Transfer, status: CreateTransferStatus) -> None:
    m = setup()
    before = dict(m.accounts)
    assert m.statuses([transfer]) == [status]
    assert m.accounts == before
    assert transfer.id not in m.transfers


def test_created_transfer_moves_balances_and_gets_increasing_timestamps() -> None:
    m = setup()
    res = m.create_transfers([tr(100, amount=7), tr(101, dr=2, cr=1, amount=3)])
    assert [r.status for r in res] == [S.CREATED, S.CREATED]
    assert res[0].timestamp < res[1].timestamp
    assert m.transfer(100).timestamp == res[0].timestamp
    a1, a2 = m.account(1), m.account(2)
    assert (a1.debits_posted, a1.credits_posted) == (7, 3)
    assert (a2.debits_posted, a2.credits_posted) == (3, 7)
    # A later batch at an earlier clock still gets later timestamps.
    m.now -= 10 * NS
    later = m.create_transfers([tr(102)])
    assert later[0].timestamp > res[1].timestamp


def test_zero_amount_transfer_is_allowed() -> None:
    m = setup()
    assert m.statuses([tr(100, amount=0)]) == [S.CREATED]


def test_debits_must_not_exceed_credits_edge() -> None:
    m = setup()
    assert m.statuses([tr(100, dr=1, cr=4, amount=50)]) == [S.CREATED]
    assert m.statuses([tr(101, dr=4, cr=1, amount=51)]) == [S.EXCEEDS_CREDITS]
    assert m.statuses([tr(102, dr=4, cr=1, amount=50)]) == [S.CREATED]
    assert m.statuses([tr(103, dr=4, cr=1, amount=1)]) == [S.EXCEEDS_CREDITS]


def test_credits_must_not_exceed_debits_edge() -> None:
    m = setup()
    assert m.statuses([tr(100, dr=5, cr=1, amount=20)]) == [S.CREATED]
    assert m.statuses([tr(101, dr=1, cr=5, amount=21)]) == [S.EXCEEDS_DEBITS]
    assert m.statuses([tr(102, dr=1, cr=5, amount=20)]) == [S.CREATED]


# ------------------------------------------------------------------------------------------
# Idempotency and failed ids


def test_exists_and_exists_with_different_fields() -> None:
    m = setup()
    base = tr(100, amount=5, user_data_128=1, user_data_64=2, user_data_32=3)
    first = m.create_transfers([base])
    again = m.create_transfers([base])
    assert again[0].status is S.EXISTS and again[0].timestamp == first[0].timestamp
    cases = [
        (dict(flags=int(F.LINKED)), S.EXISTS_WITH_DIFFERENT_FLAGS),
        (dict(pending_id=9), S.EXISTS_WITH_DIFFERENT_PENDING_ID),
        (dict(timeout=9), S.EXISTS_WITH_DIFFERENT_TIMEOUT),
        (dict(debit_account_id=4), S.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
        (dict(credit_account_id=4), S.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID),
        (dict(amount=6), S.EXISTS_WITH_DIFFERENT_AMOUNT),
        (dict(user_data_128=9), S.EXISTS_WITH_DIFFERENT_USER_DATA_128),
        (dict(user_data_64=9), S.EXISTS_WITH_DIFFERENT_USER_DATA_64),
        (dict(user_data_32=9), S.EXISTS_WITH_DIFFERENT_USER_DATA_32),
        (dict(ledger=2), S.EXISTS_WITH_DIFFERENT_LEDGER),
        (dict(code=9), S.EXISTS_WITH_DIFFERENT_CODE),
    ]
    for change, status in cases:
        t = Transfer(**{**{f: getattr(base, f) for f in Transfer.__dataclass_fields__}, **change})
        if change.get("flags") == int(F.LINKED):
            # A lone linked event would be an open chain; follow it with a closing event.
            got = m.statuses([t, tr(999, amount=1)])
            assert got[0] is status
        else:
            assert m.statuses([t]) == [status], change
    assert m.account(1).debits_posted == 5


def test_duplicate_id_within_one_batch() -> None:
    m = setup()
    assert m.statuses([tr(100), tr(100), tr(100, amount=11)]) == [
        S.CREATED,
        S.EXISTS,
        S.EXISTS_WITH_DIFFERENT_AMOUNT,
    ]
    assert m.account(1).debits_posted == 10


@pytest.mark.parametrize(
    ("transfer", "first"),
    [
        (tr(100, dr=99), S.DEBIT_ACCOUNT_NOT_FOUND),
        (tr(100, cr=99), S.CREDIT_ACCOUNT_NOT_FOUND),
        (tr(100, dr=4, cr=1), S.EXCEEDS_CREDITS),
        (tr(100, dr=1, cr=5), S.EXCEEDS_DEBITS),
        (
            tr(100, flags=F.POST_PENDING_TRANSFER, pending_id=77, dr=0, cr=0, amount=0),
            S.PENDING_TRANSFER_NOT_FOUND,
        ),
    ],
)
def test_transient_failures_burn_the_id(transfer: Transfer, first: CreateTransferStatus) -> None:
    m = setup(Account(id=99, ledger=1, code=10))  # created later below; id 99 exists only after
    m.accounts.pop(99)
    assert m.statuses([transfer]) == [first]
    # Make the retry otherwise valid: create the account, fund account 4, give 5 debits.
    m.accounts[99] = (99, 0, 0, 0, 0, 0, 0, 0, 1, 10, 0, 1)
    m.create_transfers([tr(200, dr=1, cr=4, amount=100), tr(201, dr=5, cr=1, amount=100)])
    assert m.statuses([transfer]) == [S.ID_ALREADY_FAILED]
    assert transfer.id not in m.transfers


def test_non_transient_failure_can_be_retried() -> None:
    m = setup()
    assert m.statuses([tr(100, code=0)]) == [S.CODE_MUST_NOT_BE_ZERO]
    assert m.statuses([tr(100)]) == [S.CREATED]


def test_closed_account_failure_is_transient() -> None:
    m = setup()
    assert m.statuses([tr(100, flags=F.PENDING | F.CLOSING_DEBIT, amount=0)]) == [S.CREATED]
    assert m.account(1).flags & AccountFlags.CLOSED
    assert m.statuses([tr(101)]) == [S.DEBIT_ACCOUNT_ALREADY_CLOSED]
    assert m.statuses([tr(102, dr=2, cr=1)]) == [S.CREDIT_ACCOUNT_ALREADY_CLOSED]
    # Voiding the closing transfer reopens the account; the failed ids stay failed.
    assert m.statuses([Transfer(id=103, pending_id=100, flags=F.VOID_PENDING_TRANSFER)]) == [S.CREATED]
    assert not m.account(1).flags & AccountFlags.CLOSED
    assert m.statuses([tr(101), tr(104)]) == [S.ID_ALREADY_FAILED, S.CREATED]


# ------------------------------------------------------------------------------------------
# Linked chains


def test_linked_chain_all_or_nothing() -> None:
    m = setup()
    got = m.statuses(
        [
            tr(100, flags=F.LINKED),
            tr(101, flags=F.LINKED),
            tr(102, dr=4, cr=1, amount=1_000),  # fails: exceeds credits
            tr(103),
        ]
    )
    assert got == [S.LINKED_EVENT_FAILED, S.LINKED_EVENT_FAILED, S.EXCEEDS_CREDITS, S.CREATED]
    assert set(m.transfers) == {103}
    assert m.account(1).debits_posted == 10
    # The chain's non-failing ids may be retried.
    assert m.statuses([tr(100, flags=F.LINKED), tr(101)]) == [S.CREATED, S.CREATED]


def test_linked_chain_failure_in_the_middle_fails_the_rest_of_the_chain() -> None:
    m = setup()
    got = m.statuses(
        [tr(100, flags=F.LINKED), tr(101, code=0, flags=F.LINKED), tr(102, flags=F.LINKED), tr(103), tr(104)]
    )
    assert got == [
        S.LINKED_EVENT_FAILED,
        S.CODE_MUST_NOT_BE_ZERO,
        S.LINKED_EVENT_FAILED,
        S.LINKED_EVENT_FAILED,
        S.CREATED,
    ]
    assert set(m.transfers) == {104}


def test_linked_chain_open_at_batch_end() -> None:
    m = setup()
    got = m.statuses([tr(100), tr(101, flags=F.LINKED), tr(102, flags=F.LINKED)])
    assert got == [S.CREATED, S.LINKED_EVENT_FAILED, S.LINKED_EVENT_CHAIN_OPEN]
    assert set(m.transfers) == {100}


def test_linked_chain_rolls_back_pending_and_post() -> None:
    m = setup()
    assert m.statuses([tr(100, flags=F.PENDING, amount=30)]) == [S.CREATED]
    got = m.statuses(
        [
            Transfer(id=101, pending_id=100, amount=AMOUNT_MAX, flags=F.POST_PENDING_TRANSFER | F.LINKED),
            tr(102, flags=F.PENDING | F.LINKED, amount=5),
            tr(103, dr=99),
        ]
    )
    assert got == [S.LINKED_EVENT_FAILED, S.LINKED_EVENT_FAILED, S.DEBIT_ACCOUNT_NOT_FOUND]
    assert m.pending[100][1] == PendingState.PENDING
    a1 = m.account(1)
    assert (a1.debits_pending, a1.debits_posted) == (30, 0)
    assert 102 not in m.pending


def test_chain_uses_balances_of_earlier_chain_members() -> None:
    m = setup()
    # Fund 4 and spend it within the same chain; the spend relies on the first event.
    assert m.statuses([tr(100, dr=1, cr=4, amount=8, flags=F.LINKED), tr(101, dr=4, cr=2, amount=8)]) == [
        S.CREATED,
        S.CREATED,
    ]


# ------------------------------------------------------------------------------------------
# Two-phase transfers


def test_pending_then_full_post() -> None:
    m = setup()
    assert m.statuses([tr(100, flags=F.PENDING, amount=30)]) == [S.CREATED]
    a1 = m.account(1)
    assert (a1.debits_pending, a1.debits_posted) == (30, 0)
    post = Transfer(id=101, pending_id=100, amount=AMOUNT_MAX, flags=F.POST_PENDING_TRANSFER)
    assert m.statuses([post]) == [S.CREATED]
    a1, a2 = m.account(1), m.account(2)
    assert (a1.debits_pending, a1.debits_posted, a2.credits_pending, a2.credits_posted) == (0, 30, 0, 30)
    stored = m.transfer(101)
    assert (stored.debit_account_id, stored.credit_account_id, stored.amount, stored.ledger, stored.code) == (
        1,
        2,
        30,
        1,
        1,
    )
    assert m.pending[100][1] == PendingState.POSTED
    assert m.statuses([post]) == [S.EXISTS]
    assert m.statuses([Transfer(id=102, pending_id=100, amount=1, flags=F.POST_PENDING_TRANSFER)]) == [
        S.PENDING_TRANSFER_ALREADY_POSTED
    ]
    assert m.statuses([Transfer(id=103, pending_id=100, flags=F.VOID_PENDING_TRANSFER)]) == [
        S.PENDING_TRANSFER_ALREADY_POSTED
    ]


def test_partial_post_releases_the_rest() -> None:
    m = setup()
    m.create_transfers([tr(100, flags=F.PENDING, amount=30)])
    assert m.statuses([Transfer(id=101, pending_id=100, amount=12, flags=F.POST_PENDING_TRANSFER)]) == [
        S.CREATED
    ]
    a1, a2 = m.account(1), m.account(2)
    assert (a1.debits_pending, a1.debits_posted, a2.credits_pending, a2.credits_posted) == (0, 12, 0, 12)
    # Idempotent retry of the partial post; a different amount is a different transfer body.
    assert m.statuses([Transfer(id=101, pending_id=100, amount=12, flags=F.POST_PENDING_TRANSFER)]) == [
        S.EXISTS
    ]
    assert m.statuses([Transfer(id=101, pending_id=100, amount=13, flags=F.POST_PENDING_TRANSFER)]) == [
        S.EXISTS_WITH_DIFFERENT_AMOUNT
    ]


def test_post_more_than_pending_is_refused() -> None:
    m = setup()
    m.create_transfers([tr(100, flags=F.PENDING, amount=30)])
    assert m.statuses([Transfer(id=101, pending_id=100, amount=31, flags=F.POST_PENDING_TRANSFER)]) == [
        S.EXCEEDS_PENDING_TRANSFER_AMOUNT
    ]


def test_void_releases_everything_once() -> None:
    m = setup()
    m.create_transfers([tr(100, flags=F.PENDING, amount=30)])
    assert m.statuses([Transfer(id=101, pending_id=100, amount=29, flags=F.VOID_PENDING_TRANSFER)]) == [
        S.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
    ]
    assert m.statuses([Transfer(id=102, pending_id=100, flags=F.VOID_PENDING_TRANSFER)]) == [S.CREATED]
    a1 = m.account(1)
    assert (a1.debits_pending, a1.debits_posted) == (0, 0)
    assert m.transfer(102).amount == 30
    assert m.statuses([Transfer(id=103, pending_id=100, flags=F.VOID_PENDING_TRANSFER)]) == [
        S.PENDING_TRANSFER_ALREADY_VOIDED
    ]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (dict(debit_account_id=2), S.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID),
        (dict(credit_account_id=1), S.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID),
        (dict(ledger=2), S.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER),
        (dict(code=2), S.PENDING_TRANSFER_HAS_DIFFERENT_CODE),
    ],
)
def test_post_must_match_the_pending(change: dict[str, int], status: CreateTransferStatus) -> None:
    m = setup()
    m.create_transfers([tr(100, flags=F.PENDING, amount=30)])
    post = Transfer(id=101, pending_id=100, amount=5, flags=F.POST_PENDING_TRANSFER, **change)
    assert m.statuses([post]) == [status]


def test_post_of_a_non_pending_transfer() -> None:
    m = setup()
    m.create_transfers([tr(100)])
    assert m.statuses([Transfer(id=101, pending_id=100, flags=F.POST_PENDING_TRANSFER)]) == [
        S.PENDING_TRANSFER_NOT_PENDING
    ]


def test_pending_expiry_is_deterministic_on_the_ledger_clock() -> None:
    m = setup()
    m.create_transfers([tr(100, flags=F.PENDING, amount=30, timeout=10)])
    m.now += 9 * NS
    m.create_transfers([tr(101, amount=1)])
    assert m.account(1).debits_pending == 30  # not yet
    m.now += 2 * NS
    # The batch that starts after expiry releases the reservation first, then refuses its post.
    assert m.statuses(
        [Transfer(id=102, pending_id=100, flags=F.POST_PENDING_TRANSFER, amount=AMOUNT_MAX)]
    ) == [S.PENDING_TRANSFER_EXPIRED]
    assert m.account(1).debits_pending == 0
    assert m.pending[100][1] == PendingState.EXPIRED
    assert m.statuses([Transfer(id=103, pending_id=100, flags=F.VOID_PENDING_TRANSFER)]) == [
        S.PENDING_TRANSFER_EXPIRED
    ]


def test_expired_closing_transfer_reopens_the_account() -> None:
    m = setup()
    m.create_transfers([tr(100, flags=F.PENDING | F.CLOSING_CREDIT, amount=0, timeout=1)])
    assert m.account(2).flags & AccountFlags.CLOSED
    m.now += 2 * NS
    m.create_transfers([tr(101, dr=3, cr=3)])  # any batch triggers the expiry sweep
    assert not m.account(2).flags & AccountFlags.CLOSED


def test_overflows_timeout() -> None:
    m = setup()
    m.now = BALANCE_MAX - 10 * NS
    assert m.statuses([tr(100, flags=F.PENDING, timeout=20)]) == [S.OVERFLOWS_TIMEOUT]


# ------------------------------------------------------------------------------------------
# Balancing transfers and overflow


def test_balancing_debit_transfers_at_most_the_available_balance() -> None:
    m = setup()
    m.create_transfers([tr(100, dr=1, cr=4, amount=40)])
    assert m.statuses([tr(101, dr=4, cr=2, amount=100, flags=F.BALANCING_DEBIT)]) == [S.CREATED]
    assert m.transfer(101).amount == 40
    a4 = m.account(4)
    assert a4.debits_posted == a4.credits_posted == 40
    # Retrying with the original (larger) amount is EXISTS; a smaller cap than what moved is not.
    assert m.statuses([tr(101, dr=4, cr=2, amount=100, flags=F.BALANCING_DEBIT)]) == [S.EXISTS]
    assert m.statuses([tr(101, dr=4, cr=2, amount=39, flags=F.BALANCING_DEBIT)]) == [
        S.EXISTS_WITH_DIFFERENT_AMOUNT
    ]
    # Nothing left: a balancing transfer moves zero.
    assert m.statuses([tr(102, dr=4, cr=2, amount=AMOUNT_MAX, flags=F.BALANCING_DEBIT)]) == [S.CREATED]
    assert m.transfer(102).amount == 0


def test_balancing_credit() -> None:
    m = setup()
    m.create_transfers([tr(100, dr=5, cr=1, amount=25)])
    assert m.statuses([tr(101, dr=2, cr=5, amount=AMOUNT_MAX, flags=F.BALANCING_CREDIT)]) == [S.CREATED]
    assert m.transfer(101).amount == 25


def test_pending_balancing_debit_reserves_the_available_balance() -> None:
    m = setup()
    m.create_transfers([tr(100, dr=1, cr=4, amount=40)])
    assert m.statuses([tr(101, dr=4, cr=2, amount=30, flags=F.BALANCING_DEBIT | F.PENDING)]) == [S.CREATED]
    assert m.statuses([tr(102, dr=4, cr=2, amount=30, flags=F.BALANCING_DEBIT)]) == [S.CREATED]
    assert m.transfer(102).amount == 10


def test_overflow_statuses() -> None:
    extra = [Account(id=i, ledger=1, code=10) for i in (6, 7, 8, 9)]
    big = BALANCE_MAX - 5
    m = setup(*extra)
    assert m.statuses([tr(100, dr=6, cr=7, amount=big)]) == [S.CREATED]  # 6 debited, 7 credited
    assert m.statuses([tr(101, dr=6, cr=8, amount=6)]) == [S.OVERFLOWS_DEBITS_POSTED]
    assert m.statuses([tr(102, dr=8, cr=7, amount=6)]) == [S.OVERFLOWS_CREDITS_POSTED]
    assert m.statuses([tr(103, dr=6, cr=8, amount=5)]) == [S.CREATED]  # exactly at the bound
    assert m.statuses([tr(104, dr=8, cr=9, amount=1 << 63)]) == [S.OVERFLOWS_DEBITS_POSTED]
    m = setup(*extra)
    assert m.statuses([tr(100, dr=6, cr=7, amount=BALANCE_MAX, flags=F.PENDING)]) == [S.CREATED]
    assert m.statuses([tr(101, dr=6, cr=8, amount=1, flags=F.PENDING)]) == [S.OVERFLOWS_DEBITS_PENDING]
    assert m.statuses([tr(102, dr=8, cr=7, amount=1, flags=F.PENDING)]) == [S.OVERFLOWS_CREDITS_PENDING]
    # posted room is free, but pending + posted would exceed the bound
    assert m.statuses([tr(103, dr=6, cr=8, amount=1)]) == [S.OVERFLOWS_DEBITS]
    assert m.statuses([tr(104, dr=8, cr=7, amount=1)]) == [S.OVERFLOWS_CREDITS]


# ------------------------------------------------------------------------------------------
# Limits and invariants


def test_batch_limit() -> None:
    m = setup()
    assert len(m.create_transfers([tr(1000 + i, amount=1) for i in range(BATCH_MAX)])) == BATCH_MAX
    with pytest.raises(BatchTooLargeError):
        m.create_transfers([tr(20000 + i, amount=1) for i in range(BATCH_MAX + 1)])
    with pytest.raises(BatchTooLargeError):
        m.create_accounts([Account(id=50_000 + i, ledger=1, code=1) for i in range(BATCH_MAX + 1)])


def test_out_of_range_fields_raise_before_anything_is_applied() -> None:
    m = setup()
    for bad in (
        tr(100, amount=-1),
        tr(100, amount=AMOUNT_MAX + 1),
        tr(-1),
        tr(100, user_data_64=1 << 64),
        tr(100, code=1 << 16),
    ):
        with pytest.raises(LedgerValueError):
            m.create_transfers([tr(99), bad])
        assert 99 not in m.transfers


def test_invariant_check_raises_explicitly() -> None:
    before = {1: (1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1), 2: (2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 2)}
    unbalanced = {1: (1, 0, 5, 0, 0, 0, 0, 0, 1, 1, 0, 1), 2: (2, 0, 0, 0, 4, 0, 0, 0, 1, 1, 0, 2)}
    with pytest.raises(LedgerInvariantError):
        eng.check_account_invariants(before, unbalanced)
    overdrawn = {1: (1, 0, 5, 0, 0, 0, 0, 0, 1, 1, int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS), 1)}
    with pytest.raises(LedgerInvariantError):
        eng.check_account_invariants({}, overdrawn)
    negative = {1: (1, -1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1)}
    with pytest.raises(LedgerInvariantError):
        eng.check_account_invariants({}, negative)
    eng.check_account_invariants(before, before)


def test_engine_is_pure() -> None:
    m = setup()
    accounts = dict(m.accounts)
    snap = eng.TransferSnapshot(accounts, {}, {}, {}, (), m.last_ts)
    out = eng.create_transfers(snap, [tr(100), tr(101, flags=F.PENDING)], m.now)
    assert accounts == m.accounts  # the snapshot was not modified
    assert len(out.created) == 2 and 101 in out.pending_new


def test_invariant_check_on_the_whole_column_form() -> None:
    """The one-ledger, no-new-account form: each broken invariant still raises."""

    def row(aid: int, dp: int = 0, dpo: int = 0, cp: int = 0, cpo: int = 0, flags: int = 0) -> eng.AccountRow:
        return (aid, dp, dpo, cp, cpo, 0, 0, 0, 1, 1, flags, aid)

    before = {1: row(1, cpo=10), 2: row(2)}
    eng.check_account_invariants(before, {1: row(1, dpo=5, cpo=10), 2: row(2, cpo=5)})
    with pytest.raises(LedgerInvariantError, match="different amounts"):
        eng.check_account_invariants(before, {1: row(1, dpo=5, cpo=10), 2: row(2, cpo=4)})
    with pytest.raises(LedgerInvariantError, match="account 2: balance out of range"):
        eng.check_account_invariants(before, {1: row(1, cpo=10), 2: row(2, dp=-1, cp=-1)})
    with pytest.raises(LedgerInvariantError, match="out of range"):
        eng.check_account_invariants(before, {1: row(1, dpo=BALANCE_MAX + 1, cpo=10), 2: row(2)})
    dmnec = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
    cmned = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
    with pytest.raises(LedgerInvariantError, match="debits exceed credits"):
        eng.check_account_invariants(
            {1: row(1, flags=dmnec), 2: row(2)}, {1: row(1, dpo=1, flags=dmnec), 2: row(2, cpo=1)}
        )
    with pytest.raises(LedgerInvariantError, match="credits exceed debits"):
        eng.check_account_invariants(
            {1: row(1), 2: row(2, flags=cmned)}, {1: row(1, dpo=1), 2: row(2, cpo=1, flags=cmned)}
        )


# ------------------------------------------------------------------------------------------
# Plain batches (the whole-batch path) against the event-by-event path


def _both_paths(
    m: MemLedger, events: list[Transfer]
) -> tuple[eng.TransferOutcome | None, eng.TransferOutcome]:
    snap = eng.TransferSnapshot(
        dict(m.accounts), dict(m.transfers), dict(m.pending), dict(m.failed), (), m.last_ts
    )
    base = eng.batch_timestamp(m.now, m.last_ts)
    return eng._plain_transfers(snap, events, base), eng._transfers_in_order(snap, events, base)


def _same(a: eng.TransferOutcome, b: eng.TransferOutcome) -> None:
    assert a.results == b.results
    assert [r.status for r in a.results] == [r.status for r in b.results]
    assert a.created == b.created
    assert a.accounts == b.accounts
    assert (a.pending, a.pending_new, a.failed, a.last_timestamp) == (
        b.pending,
        b.pending_new,
        b.failed,
        b.last_timestamp,
    )


def test_plain_batch_takes_the_whole_batch_path() -> None:
    m = setup()
    m.create_transfers([tr(1, dr=1, cr=4, amount=100)])  # funds for the limited account 4
    events = [
        tr(10 + k, dr=[1, 2, 4][k % 3], cr=[2, 1, 1][k % 3], amount=k % 5, user_data_64=k) for k in range(50)
    ]
    plain, exact = _both_paths(m, events)
    assert plain is not None
    _same(plain, exact)
    assert all(r.status is S.CREATED for r in plain.results)


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([tr(10), tr(10)], id="duplicate id in the batch"),
        pytest.param([tr(10), tr(1)], id="existing id"),
        pytest.param([tr(10), tr(11, dr=9)], id="unknown account"),
        pytest.param([tr(10), tr(11, dr=1, cr=3)], id="accounts on two ledgers"),
        pytest.param([tr(10), tr(11, ledger=2)], id="transfer on another ledger"),
        pytest.param([tr(10), tr(11, dr=2, cr=2)], id="same account"),
        pytest.param([tr(10), tr(11, code=0)], id="code zero"),
        pytest.param([tr(10), tr(11, flags=F.LINKED), tr(12)], id="a flag"),
        pytest.param([tr(10), tr(11, timeout=1)], id="timeout"),
        pytest.param([tr(10), tr(11, dr=4, amount=101)], id="exceeds credits"),
        pytest.param(
            [tr(10, dr=4, amount=60), tr(11, cr=4, amount=60), tr(12, dr=4, amount=60)], id="limit order"
        ),
        pytest.param([tr(10, dr=1, cr=5, amount=1)], id="exceeds debits"),
        pytest.param([tr(10, amount=BALANCE_MAX), tr(11, amount=1)], id="overflow"),
        pytest.param([tr(10, amount=AMOUNT_MAX)], id="amount max"),
    ],
)
def test_plain_batch_that_may_fail_goes_event_by_event(events: list[Transfer]) -> None:
    m = setup()
    m.create_transfers([tr(1, dr=1, cr=4, amount=100)])
    plain, exact = _both_paths(m, events)
    assert plain is None
    assert m.statuses(events) == [r.status for r in exact.results]


def test_plain_batch_on_a_closed_account_goes_event_by_event() -> None:
    m = setup()
    assert m.statuses([tr(1, flags=F.PENDING | F.CLOSING_DEBIT)]) == [S.CREATED]
    plain, exact = _both_paths(m, [tr(10)])
    assert plain is None
    assert [r.status for r in exact.results] == [S.DEBIT_ACCOUNT_ALREADY_CLOSED]


@st.composite
def _plain_batch(draw: st.DrawFn) -> list[Transfer]:
    """Mostly batches that all succeed, sometimes with one reason not to."""
    events = []
    for k in range(draw(st.integers(1, 12))):
        tid = draw(st.sampled_from([100 + k] * 60 + [1, 100]))  # 1..5 exist; 100 may repeat
        dr, cr = draw(st.permutations([1, 2, 4, 6]))[:2]
        if draw(st.integers(0, 60)) == 0:
            dr, cr = draw(st.sampled_from([(5, 1), (1, 5), (3, 1), (2, 2), (9, 1)]))
        amount = draw(st.integers(0, 40)) if draw(st.integers(0, 60)) else BALANCE_MAX - 100
        ledger = draw(st.sampled_from([1] * 60 + [2]))
        u64 = draw(st.sampled_from([0, 0, 7, (1 << 64) - 1]))
        events.append(tr(tid, dr=dr, cr=cr, amount=amount, ledger=ledger, user_data_64=u64))
    return events


@given(_plain_batch())
@settings(max_examples=400, deadline=None)
def test_plain_batches_agree_with_the_event_by_event_path(events: list[Transfer]) -> None:
    m = setup(Account(id=6, ledger=1, code=10))
    m.create_transfers([tr(k, dr=1, cr=[4, 6][k % 2], amount=50) for k in range(1, 6)])
    plain, exact = _both_paths(m, events)
    if plain is not None:
        _same(plain, exact)
