"""Consent lifecycle: every legal transition, illegal ones refused, expiry by the clock."""

from __future__ import annotations

import pytest

from consent.records import (
    ConsentEvent,
    IllegalTransition,
    InvalidRecord,
    NoticeChanged,
    RecordState,
    apply_event,
    effective_status,
    grant_intervals,
    plan_transition,
    replay,
)
from consent.vocab import Status

from .support import DAY, HOUR, NOTICE, NOTICE_V2, T0, terms

UNTIL = T0 + 30 * DAY
S = Status

# (from, to) -> legal?  None is a new record.
LEGAL = {
    (None, S.REQUESTED),
    (None, S.GIVEN),
    (S.REQUESTED, S.GIVEN),
    (S.REQUESTED, S.REFUSED),
    (S.GIVEN, S.WITHDRAWN),
    (S.GIVEN, S.REVOKED),
    (S.GIVEN, S.RENEWED),
    (S.GIVEN, S.EXPIRED),
    (S.RENEWED, S.WITHDRAWN),
    (S.RENEWED, S.REVOKED),
    (S.RENEWED, S.RENEWED),
    (S.RENEWED, S.EXPIRED),
    (S.EXPIRED, S.RENEWED),
}

# how to reach each starting status
PATHS: dict[Status | None, list[ConsentEvent]] = {
    None: [],
    S.REQUESTED: [ConsentEvent(S.REQUESTED, T0)],
    S.GIVEN: [ConsentEvent(S.GIVEN, T0, UNTIL)],
    S.REFUSED: [ConsentEvent(S.REQUESTED, T0), ConsentEvent(S.REFUSED, T0 + 1)],
    S.WITHDRAWN: [ConsentEvent(S.GIVEN, T0, UNTIL), ConsentEvent(S.WITHDRAWN, T0 + 1)],
    S.REVOKED: [ConsentEvent(S.GIVEN, T0, UNTIL), ConsentEvent(S.REVOKED, T0 + 1)],
    S.RENEWED: [ConsentEvent(S.GIVEN, T0, UNTIL), ConsentEvent(S.RENEWED, T0 + 1, UNTIL + DAY)],
    S.EXPIRED: [ConsentEvent(S.GIVEN, T0, UNTIL), ConsentEvent(S.EXPIRED, UNTIL)],
}


def _event(state: RecordState, target: Status) -> ConsentEvent:
    """A well-formed event of `target` at a time that is legal by the clock."""
    if target == S.EXPIRED:
        return ConsentEvent(S.EXPIRED, state.valid_until_ns)
    at = (state.events[-1].at_ns + 1) if state.events else T0
    if state.status == S.EXPIRED:
        at = state.valid_until_ns + HOUR
    if target == S.GIVEN:
        return ConsentEvent(S.GIVEN, at, state.terms.valid_until_ns)
    if target == S.RENEWED:
        return ConsentEvent(S.RENEWED, at, max(state.valid_until_ns, at) + 10 * DAY)
    return ConsentEvent(target, at)


@pytest.mark.parametrize("start", list(PATHS), ids=lambda s: str(s or "new"))
@pytest.mark.parametrize("target", list(Status), ids=str)
def test_every_transition_is_legal_or_refused(start: Status | None, target: Status) -> None:
    state = replay(1, terms(), PATHS[start])
    assert state.status == start
    event = _event(state, target)
    if (start, target) in LEGAL:
        after = apply_event(state, event)
        assert after.status == target
        assert after.events[:-1] == state.events  # append-only
    else:
        with pytest.raises(IllegalTransition):
            apply_event(state, event)


def test_only_given_and_renewed_permit_processing() -> None:
    assert {s for s in Status if s.permits_processing} == {S.GIVEN, S.RENEWED}
    assert S.GIVEN.dpv == "dpv:ConsentGiven" and S.RENEWED.dpv == "dpv:RenewedConsentGiven"


def test_expiry_follows_the_clock_without_any_event() -> None:
    state = replay(1, terms(), PATHS[S.GIVEN])
    assert effective_status(state, UNTIL - 1) == S.GIVEN
    assert effective_status(state, UNTIL) == S.EXPIRED
    assert grant_intervals(state) == [(T0, UNTIL)]


def test_expired_event_only_at_the_validity_end() -> None:
    state = replay(1, terms(), PATHS[S.GIVEN])
    with pytest.raises(IllegalTransition):
        apply_event(state, ConsentEvent(S.EXPIRED, UNTIL - HOUR))


def test_acting_after_expiry_writes_the_expired_event_first() -> None:
    state = replay(1, terms(), PATHS[S.GIVEN])
    events = plan_transition(state, S.RENEWED, UNTIL + DAY, valid_until_ns=UNTIL + 40 * DAY)
    assert [e.status for e in events] == [S.EXPIRED, S.RENEWED]
    assert events[0].at_ns == UNTIL
    renewed = replay(1, terms(), [*state.events, *events])
    # the gap between expiry and renewal permits nothing
    assert grant_intervals(renewed) == [(T0, UNTIL), (UNTIL + DAY, UNTIL + 40 * DAY)]


def test_withdrawing_an_expired_consent_is_refused() -> None:
    state = replay(1, terms(), PATHS[S.GIVEN])
    with pytest.raises(IllegalTransition):
        plan_transition(state, S.WITHDRAWN, UNTIL + 1)


def test_withdrawal_truncates_the_grant_at_its_time() -> None:
    state = replay(1, terms(), PATHS[S.GIVEN])
    events = plan_transition(state, S.WITHDRAWN, T0 + 5 * HOUR)
    after = replay(1, terms(), [*state.events, *events])
    assert grant_intervals(after) == [(T0, T0 + 5 * HOUR)]


def test_renewal_before_expiry_extends_the_interval() -> None:
    state = replay(1, terms(), PATHS[S.RENEWED])
    assert grant_intervals(state) == [(T0, UNTIL + DAY)]
    assert state.valid_until_ns == UNTIL + DAY


def test_renewal_under_a_changed_notice_is_refused() -> None:
    state = replay(1, terms(), PATHS[S.GIVEN])
    plan_transition(state, S.RENEWED, T0 + 1, valid_until_ns=UNTIL + DAY, notice=NOTICE)
    with pytest.raises(NoticeChanged):
        plan_transition(state, S.RENEWED, T0 + 1, valid_until_ns=UNTIL + DAY, notice=NOTICE_V2)


def test_events_never_go_back_in_time() -> None:
    state = replay(1, terms(), [ConsentEvent(S.GIVEN, T0 + HOUR, UNTIL)])
    with pytest.raises(IllegalTransition):
        apply_event(state, ConsentEvent(S.WITHDRAWN, T0))


def test_given_keeps_the_records_validity() -> None:
    with pytest.raises(IllegalTransition):
        replay(1, terms(), [ConsentEvent(S.GIVEN, T0, UNTIL + DAY)])
    with pytest.raises(IllegalTransition):
        replay(1, terms(), [ConsentEvent(S.GIVEN, UNTIL, UNTIL)])


def test_validity_starts_no_earlier_than_valid_from() -> None:
    state = replay(1, terms(valid_from_ns=T0 + DAY), [ConsentEvent(S.GIVEN, T0, UNTIL)])
    assert grant_intervals(state) == [(T0 + DAY, UNTIL)]


@pytest.mark.parametrize(
    "change",
    [
        {"purposes": ("dpv:Marketing",)},
        {"categories": ("pd:Name",)},
        {"categories": ()},
        {"recipients": ()},
        {"valid_until_ns": T0},
        {"subject": ""},
    ],
)
def test_invalid_terms_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(InvalidRecord):
        terms(**change).validate()  # type: ignore[arg-type]


def test_terms_carry_the_27560_fields() -> None:
    record = terms()
    record.validate()
    assert record.legal_basis == "dpv:Consent"
    assert record.schema_version.startswith("civitas-consent-record/")
    assert record.notice.version == "1" and len(record.notice.content_sha256) == 64
