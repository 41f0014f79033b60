"""Consent records (ISO/IEC TS 27560 fields as mapped by DPV) and their lifecycle; pure, no I/O.

A record holds the terms the citizen agreed to; its life is an append-only list of events whose
statuses are DPV consent statuses. The state machine:

    (new)      -> requested | given
    requested  -> given | refused
    given      -> withdrawn | revoked | renewed | expired
    renewed    -> withdrawn | revoked | renewed | expired
    expired    -> renewed
    refused, withdrawn, revoked: terminal

Expiry follows the clock: a given/renewed record whose validity has ended *is* expired whether or
not an ``expired`` event was written (`effective_status`); the store writes that event lazily, at
the validity end, before any later event. Only given and renewed permit processing, and only in
the grant intervals computed here, which the policy index and the SQL re-checks both use.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from consent.vocab import CATEGORIES, LEGAL_BASIS_CONSENT, PURPOSES, Status

__all__ = [
    "MAX_LIST_ITEMS",
    "MINUTE_NS",
    "SCHEMA_VERSION",
    "ConsentError",
    "ConsentEvent",
    "ConsentTerms",
    "IllegalTransition",
    "InvalidRecord",
    "Notice",
    "NoticeChanged",
    "RecordState",
    "apply_event",
    "effective_status",
    "format_id",
    "grant_intervals",
    "parse_id",
    "plan_transition",
    "replay",
]

SCHEMA_VERSION = "civitas-consent-record/1"
MINUTE_NS = 60_000_000_000
MAX_LIST_ITEMS = 32
MAX_TEXT = 200
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")

_ALLOWED: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.REQUESTED, Status.GIVEN}),
    Status.REQUESTED: frozenset({Status.GIVEN, Status.REFUSED}),
    Status.GIVEN: frozenset({Status.WITHDRAWN, Status.REVOKED, Status.RENEWED, Status.EXPIRED}),
    Status.RENEWED: frozenset({Status.WITHDRAWN, Status.REVOKED, Status.RENEWED, Status.EXPIRED}),
    Status.EXPIRED: frozenset({Status.RENEWED}),
    Status.REFUSED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    Status.REVOKED: frozenset(),
}


class ConsentError(Exception):
    """Base class of consent rule violations."""


class InvalidRecord(ConsentError):
    """The record's fields are malformed or out of bounds."""


class IllegalTransition(ConsentError):
    """The lifecycle does not allow this event from the record's current status."""


class NoticeChanged(ConsentError):
    """The notice changed: renewal is refused, a new consent request must be made."""


def format_id(value: int) -> str:
    return str(uuid.UUID(int=value))


def parse_id(text: str) -> int:
    try:
        return uuid.UUID(text).int
    except (ValueError, AttributeError, TypeError) as exc:
        raise InvalidRecord(f"not a record id: {text!r}") from exc


def _text(name: str, value: str, *, max_len: int = MAX_TEXT) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len or not value.isprintable():
        raise InvalidRecord(f"{name} must be 1..{max_len} printable characters")


@dataclass(frozen=True)
class Notice:
    """The privacy notice shown when consent was asked: id, version and SHA-256 of its content."""

    notice_id: str
    version: str
    content_sha256: str

    def validate(self) -> None:
        _text("notice id", self.notice_id)
        _text("notice version", self.version, max_len=64)
        if not _SHA256_HEX.match(self.content_sha256):
            raise InvalidRecord("notice content hash must be 64 lowercase hex digits (SHA-256)")


@dataclass(frozen=True)
class ConsentTerms:
    """The ISO/IEC TS 27560 fields of one consent record (as DPV terms)."""

    subject: str  # the citizen's per-service pseudonym, never a name
    controller: str
    notice: Notice
    language: str
    purposes: frozenset[str]
    categories: frozenset[str]
    recipients: frozenset[str]  # agency OAuth2 client ids
    jurisdiction: str
    retention_s: int
    withdrawal_method: str
    valid_from_ns: int
    valid_until_ns: int
    legal_basis: str = LEGAL_BASIS_CONSENT
    schema_version: str = SCHEMA_VERSION

    def validate(self) -> None:
        _text("subject", self.subject, max_len=128)
        _text("controller", self.controller)
        self.notice.validate()
        if not _LANGUAGE.match(self.language):
            raise InvalidRecord("language must be a BCP 47 tag")
        if not _JURISDICTION.match(self.jurisdiction):
            raise InvalidRecord("jurisdiction must be an ISO 3166 code")
        for name, values, known in (
            ("purposes", self.purposes, PURPOSES),
            ("categories", self.categories, CATEGORIES),
        ):
            if not values or len(values) > MAX_LIST_ITEMS:
                raise InvalidRecord(f"{name} must hold 1..{MAX_LIST_ITEMS} terms")
            unknown = sorted(values - known)
            if unknown:
                raise InvalidRecord(f"unknown {name}: {', '.join(unknown)}")
        if not self.recipients or len(self.recipients) > MAX_LIST_ITEMS:
            raise InvalidRecord(f"recipients must hold 1..{MAX_LIST_ITEMS} client ids")
        for recipient in self.recipients:
            _text("recipient", recipient, max_len=64)
        if self.legal_basis != LEGAL_BASIS_CONSENT:
            raise InvalidRecord("the legal basis of a consent record is dpv:Consent")
        if self.schema_version != SCHEMA_VERSION:
            raise InvalidRecord(f"unsupported schema version {self.schema_version!r}")
        if not 0 < self.retention_s <= 10 * 366 * 86_400:
            raise InvalidRecord("retention must be 1 s .. 10 years")
        _text("withdrawal method", self.withdrawal_method)
        if not 0 <= self.valid_from_ns < self.valid_until_ns < 1 << 63:
            raise InvalidRecord("validity period must be a non-empty interval")

    def with_notice(self, notice: Notice) -> ConsentTerms:
        return replace(self, notice=notice)


@dataclass(frozen=True)
class ConsentEvent:
    """One lifecycle event. `valid_until_ns` is the validity end set by given/renewed events."""

    status: Status
    at_ns: int
    valid_until_ns: int | None = None


@dataclass(frozen=True)
class RecordState:
    record_id: int
    terms: ConsentTerms
    events: tuple[ConsentEvent, ...] = field(default=())

    @property
    def status(self) -> Status | None:
        """The last written status (see `effective_status` for the clock's view)."""
        return self.events[-1].status if self.events else None

    @property
    def valid_until_ns(self) -> int:
        until = self.terms.valid_until_ns
        for event in self.events:
            if event.valid_until_ns is not None:
                until = event.valid_until_ns
        return until


def effective_status(state: RecordState, now_ns: int) -> Status | None:
    """The status by the clock: given/renewed past its validity end is expired."""
    status = state.status
    if status is not None and status.permits_processing and now_ns >= state.valid_until_ns:
        return Status.EXPIRED
    return status


def apply_event(state: RecordState, event: ConsentEvent) -> RecordState:
    """Append one event after checking the lifecycle rules; raises on an illegal event."""
    current = state.status
    if event.status not in _ALLOWED[current]:
        raise IllegalTransition(f"{current or 'new'} -> {event.status} is not allowed")
    if state.events and event.at_ns < state.events[-1].at_ns:
        raise IllegalTransition("events must not go back in time")
    permitted_now = current is not None and current.permits_processing
    if permitted_now and event.status != Status.EXPIRED and event.at_ns >= state.valid_until_ns:
        raise IllegalTransition("the consent has expired; write the expired event first")
    if event.status == Status.EXPIRED:
        if event.at_ns != state.valid_until_ns:
            raise IllegalTransition("expiry happens exactly at the end of the validity period")
        if event.valid_until_ns is not None:
            raise IllegalTransition("an expired event carries no validity")
    elif event.status in (Status.GIVEN, Status.RENEWED):
        until = event.valid_until_ns
        if until is None or not event.at_ns < until < 1 << 63:
            raise IllegalTransition("given/renewed must set a validity end after the event")
        if event.status == Status.GIVEN and until != state.terms.valid_until_ns:
            raise IllegalTransition("given consent keeps the record's validity period")
    elif event.valid_until_ns is not None:
        raise IllegalTransition(f"a {event.status} event carries no validity")
    return replace(state, events=(*state.events, event))


def plan_transition(
    state: RecordState,
    status: Status,
    at_ns: int,
    *,
    valid_until_ns: int | None = None,
    notice: Notice | None = None,
) -> list[ConsentEvent]:
    """The events to append for a requested transition at `at_ns` (lazy expiry first).

    Raises NoticeChanged when renewal is asked under a different notice, IllegalTransition when
    the lifecycle forbids it. The returned events are checked by `apply_event`.
    """
    if notice is not None and notice != state.terms.notice:
        raise NoticeChanged("the notice changed; a new consent request is needed")
    events: list[ConsentEvent] = []
    current = state.status
    if (
        current is not None
        and current.permits_processing
        and at_ns >= state.valid_until_ns
        and status != Status.EXPIRED
    ):
        events.append(ConsentEvent(Status.EXPIRED, state.valid_until_ns))
    if status == Status.GIVEN:
        valid_until_ns = state.terms.valid_until_ns
    if status in (Status.GIVEN, Status.RENEWED) and valid_until_ns is None:
        raise IllegalTransition(f"{status} needs a validity end")
    if status not in (Status.GIVEN, Status.RENEWED):
        valid_until_ns = None
    events.append(ConsentEvent(status, at_ns, valid_until_ns))
    check = state
    for event in events:
        check = apply_event(check, event)
    return events


def grant_intervals(state: RecordState) -> list[tuple[int, int]]:
    """Half-open [start, end) UTC ns intervals in which this record permits processing."""
    intervals: list[tuple[int, int]] = []
    valid_from = state.terms.valid_from_ns
    for event in state.events:
        status = event.status
        if status in (Status.GIVEN, Status.RENEWED):
            until = event.valid_until_ns
            if until is None:
                raise IllegalTransition("given/renewed without a validity end")
            if intervals and intervals[-1][1] > event.at_ns:
                start = intervals[-1][0]
                intervals[-1] = (start, max(start, until))
            else:
                intervals.append((max(event.at_ns, valid_from), until))
        elif status in (Status.WITHDRAWN, Status.REVOKED) and intervals:
            start, end = intervals[-1]
            intervals[-1] = (start, max(start, min(end, event.at_ns)))
    return [(s, e) for s, e in intervals if s < e]


def replay(record_id: int, terms: ConsentTerms, events: Sequence[ConsentEvent]) -> RecordState:
    state = RecordState(record_id, terms)
    for event in events:
        state = apply_event(state, event)
    return state
