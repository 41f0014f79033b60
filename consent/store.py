"""Consent record storage: append-only events, current state, grants, receipts, Merkle log.

Every change runs in one transaction that first bumps the citizen's row in `consent_subjects`
(a row lock on PostgreSQL, the database write lock on SQLite), so changes to one citizen's
consent are serialised with each other and with sensor ingest, which holds a shared lock on the
same row while it decides and stores a batch. The event time is read from the clock *after*
that lock is held. Each event is appended to `consent_events`, gets a signed Kantara receipt and
a leaf in the consent Merkle log, and the record's grant intervals are rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from consent import eventlog
from consent import tables as t
from consent.canonical import canonical_json
from consent.policy import Grant
from consent.receipts import ControllerInfo, ReceiptSigner, build_receipt_claims, sign_receipt
from consent.records import (
    ConsentError,
    ConsentEvent,
    ConsentTerms,
    InvalidRecord,
    Notice,
    NoticeChanged,
    RecordState,
    apply_event,
    effective_status,
    grant_intervals,
    plan_transition,
)
from consent.sqlutil import chunks, insert_ignore, read_connection
from consent.vocab import Status
from identity.sql import Clock, system_clock_ns

__all__ = [
    "ConsentNotFound",
    "ConsentStore",
    "EventReceipt",
    "RecordView",
    "bump_subjects",
    "load_grants",
    "subject_versions",
]


MAX_REASON = 200
MAX_CHAIN = 64  # notice versions followed back through pending requests
SUPERSEDED_REASON = "superseded: the citizen answered the request under the changed notice"


class ConsentNotFound(ConsentError):
    """No such record (or not one of this citizen's)."""


@dataclass(frozen=True)
class EventReceipt:
    """The outcome of one appended event: its receipt and its place in the consent log."""

    record_id: int
    status: Status
    at_ns: int
    log_index: int
    receipt_id: str
    receipt_jws: str


@dataclass(frozen=True)
class RecordView:
    record_id: int
    terms: ConsentTerms
    status: Status  # as written
    effective_status: Status  # by the clock (given/renewed past validity end -> expired)
    status_ns: int
    current_until_ns: int
    created_ns: int
    supersedes: int | None
    events: tuple[tuple[ConsentEvent, str], ...]  # (event, receipt id)

    @property
    def permits_processing(self) -> bool:
        return self.effective_status.permits_processing


@functools.lru_cache(maxsize=8192)
def _term_set(text: str) -> frozenset[str]:
    """Parse a stored JSON list of terms (few distinct values: cached)."""
    return frozenset(json.loads(text))


def _json_list(values: Iterable[str]) -> str:
    return json.dumps(sorted(values), separators=(",", ":"))


def _terms_from_row(row: sa.Row[Any]) -> ConsentTerms:
    m = row._mapping
    return ConsentTerms(
        subject=m["subject"],
        controller=m["controller"],
        notice=Notice(m["notice_id"], m["notice_version"], m["notice_sha256"]),
        language=m["language"],
        purposes=frozenset(json.loads(m["purposes"])),
        categories=frozenset(json.loads(m["categories"])),
        recipients=frozenset(json.loads(m["recipients"])),
        jurisdiction=m["jurisdiction"],
        retention_s=m["retention_s"],
        withdrawal_method=m["withdrawal_method"],
        valid_from_ns=m["valid_from_ns"],
        valid_until_ns=m["valid_until_ns"],
        legal_basis=m["legal_basis"],
        schema_version=m["schema_version"],
    )


def _new_record_id() -> int:
    while True:
        value = secrets.randbits(128)
        if 0 < value < (1 << 128) - 1:
            return value


def bump_subjects(conn: sa.Connection, subjects: Iterable[str], now_ns: int) -> None:
    """Create-if-missing and bump the version of each subject's consent state (locks the rows)."""
    ordered = sorted(set(subjects))
    insert_ignore(conn, t.subjects, [{"subject": s, "version": 0, "updated_ns": now_ns} for s in ordered])
    if ordered:
        conn.execute(
            sa.update(t.subjects)
            .where(t.subjects.c.subject == sa.bindparam("s"))
            .values(version=t.subjects.c.version + 1, updated_ns=now_ns),
            [{"s": s} for s in ordered],
        )


def subject_versions(conn: sa.Connection, subjects: Sequence[str], *, lock: bool) -> dict[str, int]:
    """Current consent-state versions; with `lock`, a shared row lock held until commit (PG)."""
    out: dict[str, int] = {}
    for part in chunks(sorted(set(subjects))):
        stmt = (
            sa.select(t.subjects.c.subject, t.subjects.c.version)
            .where(t.subjects.c.subject.in_(part))
            .order_by(t.subjects.c.subject)
        )
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(read=True)
        for subject, version in conn.execute(stmt):
            out[subject] = version
    return out


def load_grants(conn: sa.Connection, subjects: Sequence[str]) -> dict[str, list[Grant]]:
    """Every grant (record with its permitted intervals) of the given subjects."""
    out: dict[str, list[Grant]] = {s: [] for s in subjects}
    for part in chunks(sorted(set(subjects))):
        rows = conn.execute(
            sa.select(
                t.records.c.record_id,
                t.records.c.subject,
                t.records.c.categories,
                t.records.c.purposes,
                t.records.c.recipients,
                t.records.c.retention_s,
                t.grants.c.start_ns,
                t.grants.c.end_ns,
            )
            .join(t.grants, t.grants.c.record_id == t.records.c.record_id)
            .where(t.records.c.subject.in_(part))
            .order_by(t.records.c.record_id, t.grants.c.start_ns)
        ).all()
        current: dict[int, tuple[Any, list[tuple[int, int]]]] = {}
        for row in rows:
            entry = current.setdefault(row.record_id, (row, []))
            entry[1].append((row.start_ns, row.end_ns))
        for record_id, (row, intervals) in current.items():
            out[row.subject].append(
                Grant(
                    record_id=record_id,
                    subject=row.subject,
                    categories=_term_set(row.categories),
                    purposes=_term_set(row.purposes),
                    recipients=_term_set(row.recipients),
                    intervals=tuple(intervals),
                    retention_s=row.retention_s,
                )
            )
    return out


def _has_successor(conn: sa.Connection, record_id: int) -> bool:
    """Whether a record supersedes `record_id` (a request made by a later notice)."""
    found = conn.execute(
        sa.select(t.records.c.record_id).where(t.records.c.supersedes == record_id).limit(1)
    ).first()
    return found is not None


def _request_targets(conn: sa.Connection, record_ids: Sequence[int], notice: Notice) -> dict[int, int]:
    """For each active record under an older notice: the record a new request must supersede.

    The record itself when nothing supersedes it yet; the pending request at the end of its chain
    when that was made under yet another notice. Records whose chain already ends in a request
    under `notice`, or in an answered one, are left out.
    """
    out: dict[int, int] = {}
    tails = {rid: rid for rid in record_ids}
    for _ in range(MAX_CHAIN):
        if not tails:
            break
        successors: dict[int, Any] = {}
        for part in chunks(sorted(set(tails.values()))):
            for row in conn.execute(
                sa.select(
                    t.records.c.record_id,
                    t.records.c.supersedes,
                    t.records.c.status,
                    t.records.c.notice_version,
                    t.records.c.notice_sha256,
                )
                .where(t.records.c.supersedes.in_(part))
                .order_by(t.records.c.created_ns)
            ):
                successors[row.supersedes] = row  # the latest one wins
        following: dict[int, int] = {}
        for origin, tail in tails.items():
            successor = successors.get(tail)
            if successor is None:
                out[origin] = tail
            elif successor.status == Status.REQUESTED.value and (
                successor.notice_version,
                successor.notice_sha256,
            ) != (notice.version, notice.content_sha256):
                following[origin] = successor.record_id
        tails = following
    return out


@dataclass
class _Writes:
    """Rows queued by one consent transaction, written with one executemany per table."""

    log: eventlog.LogAppender
    records: list[dict[str, Any]] = field(default_factory=list)
    scopes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    regrant: list[int] = field(default_factory=list)

    def flush(self, conn: sa.Connection) -> None:
        if self.records:
            conn.execute(sa.insert(t.records), self.records)
        if self.scopes:
            conn.execute(sa.insert(t.scopes), self.scopes)
        if self.events:
            conn.execute(sa.insert(t.events), self.events)
        if self.updates:
            conn.execute(
                sa.update(t.records)
                .where(t.records.c.record_id == sa.bindparam("rid"))
                .values(
                    status=sa.bindparam("st"),
                    status_ns=sa.bindparam("st_ns"),
                    current_until_ns=sa.bindparam("until"),
                ),
                self.updates,
            )
        for part in chunks(self.regrant):
            conn.execute(sa.delete(t.grants).where(t.grants.c.record_id.in_(part)))
        if self.grants:
            conn.execute(sa.insert(t.grants), self.grants)
        self.log.flush()
        self.records, self.scopes, self.events, self.grants, self.updates, self.regrant = (
            [],
            [],
            [],
            [],
            [],
            [],
        )


class ConsentStore:
    """Consent records of citizens; each public method is one transaction."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        signer: ReceiptSigner,
        clock: Clock = system_clock_ns,
        controller: ControllerInfo | None = None,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.clock = clock
        self.controller = controller or ControllerInfo()

    # -- changes ------------------------------------------------------------------------------

    def give(self, terms: ConsentTerms) -> EventReceipt:
        """The citizen gives consent on their own initiative: a new record, status given."""
        return self._create([terms], Status.GIVEN)[0]

    def give_many(self, terms: Sequence[ConsentTerms]) -> list[EventReceipt]:
        """Give many records in one transaction (imports, benchmarks)."""
        return self._create(terms, Status.GIVEN)

    def request(self, terms: ConsentTerms, *, supersedes: int | None = None) -> EventReceipt:
        """The controller asks for consent: a new record, status requested."""
        return self._create([terms], Status.REQUESTED, supersedes=supersedes)[0]

    def accept(self, record_id: int, *, subject: str, notice: Notice | None = None) -> list[EventReceipt]:
        """The citizen gives consent to a pending request.

        With `notice`, the notice the citizen was shown must be the request's (else NoticeChanged).
        A request that supersedes a record (a changed notice) replaces it: the superseded record,
        if it still permits processing, is withdrawn in the same transaction, so exactly one
        record carries the consent afterwards.
        """
        return self._transition(
            record_id, Status.GIVEN, subject=subject, notice=notice, end_superseded=True, latest_only=True
        )

    def refuse(self, record_id: int, *, subject: str) -> list[EventReceipt]:
        """The citizen refuses a pending request.

        Refusing a changed notice also ends the record it supersedes (withdrawn, same
        transaction): after a refusal nothing flows under either notice.
        """
        return self._transition(record_id, Status.REFUSED, subject=subject, end_superseded=True)

    def withdraw(self, record_id: int, *, subject: str) -> list[EventReceipt]:
        """One call: the consent stops permitting processing from this moment on."""
        return self._transition(record_id, Status.WITHDRAWN, subject=subject)

    def revoke(self, record_id: int, *, reason: str | None = None) -> list[EventReceipt]:
        """The controller (or an authority) revokes the consent; `reason` goes into the receipt."""
        if reason is not None and (
            not isinstance(reason, str) or not reason or len(reason) > MAX_REASON or not reason.isprintable()
        ):
            raise InvalidRecord(f"the reason must be 1..{MAX_REASON} printable characters")
        return self._transition(record_id, Status.REVOKED, subject=None, reason=reason)

    def renew(
        self, record_id: int, *, subject: str, valid_until_ns: int, notice: Notice
    ) -> list[EventReceipt]:
        """The citizen renews under the same notice; a changed notice raises NoticeChanged."""
        return self._transition(
            record_id, Status.RENEWED, subject=subject, valid_until_ns=valid_until_ns, notice=notice
        )

    def expire_due(self) -> list[EventReceipt]:
        """Write `expired` events for records whose validity has ended (optional: the clock rules)."""
        now = self.clock()
        with self.engine.begin() as conn:
            due = conn.execute(
                sa.select(t.records.c.record_id, t.records.c.subject).where(
                    t.records.c.status.in_([Status.GIVEN.value, Status.RENEWED.value]),
                    t.records.c.current_until_ns <= now,
                )
            ).all()
            bump_subjects(conn, [r.subject for r in due], now)
            writes = _Writes(eventlog.open_for_append(conn))
            out: list[EventReceipt] = []
            for row in due:
                state = self._load_state(conn, row.record_id)
                if state is None or state.status is None or not state.status.permits_processing:
                    continue
                events = [ConsentEvent(Status.EXPIRED, state.valid_until_ns)]
                out.extend(self._append(writes, state, events, new=False))
            writes.flush(conn)
            return out

    def change_notice(self, *, controller: str, notice_id: str, notice: Notice) -> list[EventReceipt]:
        """A changed notice starts a new request for every record still active under the old one.

        The old records keep their scope until the citizen answers (or they are withdrawn or
        expire); the new requests carry the same terms under the new notice and name the record
        they supersede. A record with a request under this notice is not asked again; one whose
        request is still pending under an older notice gets a new request superseding that
        pending one, which can then only be refused (giving it raises NoticeChanged).
        """
        notice.validate()
        if notice.notice_id != notice_id:
            raise InvalidRecord("the changed notice keeps its id")
        now = self.clock()
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(t.records).where(
                    t.records.c.controller == controller,
                    t.records.c.notice_id == notice_id,
                    t.records.c.status.in_([Status.GIVEN.value, Status.RENEWED.value]),
                    t.records.c.current_until_ns > now,
                )
            ).all()
            stale = [
                r
                for r in rows
                if (r.notice_version, r.notice_sha256) != (notice.version, notice.content_sha256)
            ]
            targets = _request_targets(conn, [r.record_id for r in stale], notice)
            todo = [(r, targets[r.record_id]) for r in stale if r.record_id in targets]
            bump_subjects(conn, [r.subject for r, _ in todo], now)
            now = self.clock()
            writes = _Writes(eventlog.open_for_append(conn))
            out: list[EventReceipt] = []
            for row, supersedes in todo:
                terms = _terms_from_row(row).with_notice(notice)
                out.extend(self._insert_new(writes, terms, Status.REQUESTED, now, supersedes=supersedes))
            writes.flush(conn)
            return out

    # -- reads --------------------------------------------------------------------------------

    def get(self, record_id: int, *, subject: str | None = None) -> RecordView:
        with read_connection(self.engine) as conn:
            views = self._views(conn, sa.select(t.records).where(t.records.c.record_id == record_id))
        if not views or (subject is not None and views[0].terms.subject != subject):
            raise ConsentNotFound("no such consent record")
        return views[0]

    def list_for_subject(self, subject: str) -> list[RecordView]:
        with read_connection(self.engine) as conn:
            return self._views(
                conn,
                sa.select(t.records).where(t.records.c.subject == subject).order_by(t.records.c.created_ns),
            )

    def receipt(self, receipt_id: str, *, subject: str | None = None) -> str:
        """The signed receipt JWS of one event."""
        with read_connection(self.engine) as conn:
            row = conn.execute(
                sa.select(t.events.c.receipt_jws, t.events.c.subject).where(
                    t.events.c.receipt_id == receipt_id
                )
            ).first()
        if row is None or (subject is not None and row.subject != subject):
            raise ConsentNotFound("no such receipt")
        return str(row.receipt_jws)

    def event_leaf(self, receipt_id: str) -> tuple[int, bytes]:
        """(log index, leaf bytes) of the event a receipt belongs to."""
        with read_connection(self.engine) as conn:
            row = conn.execute(
                sa.select(t.events.c.log_index, t.events.c.leaf).where(t.events.c.receipt_id == receipt_id)
            ).first()
        if row is None:
            raise ConsentNotFound("no such receipt")
        return int(row.log_index), bytes(row.leaf)

    # -- internals ----------------------------------------------------------------------------

    def _create(
        self, terms_list: Sequence[ConsentTerms], status: Status, *, supersedes: int | None = None
    ) -> list[EventReceipt]:
        for terms in terms_list:
            terms.validate()
        with self.engine.begin() as conn:
            bump_subjects(conn, [terms.subject for terms in terms_list], self.clock())
            now = self.clock()
            writes = _Writes(eventlog.open_for_append(conn))
            out: list[EventReceipt] = []
            for terms in terms_list:
                if terms.valid_until_ns <= now:
                    raise InvalidRecord("the validity period has already ended")
                out.extend(self._insert_new(writes, terms, status, now, supersedes=supersedes))
            writes.flush(conn)
            return out

    def _insert_new(
        self, writes: _Writes, terms: ConsentTerms, status: Status, now: int, *, supersedes: int | None
    ) -> list[EventReceipt]:
        record_id = _new_record_id()
        state = RecordState(record_id, terms)
        events = plan_transition(state, status, now)
        writes.records.append(
            {
                "record_id": record_id,
                "schema_version": terms.schema_version,
                "subject": terms.subject,
                "controller": terms.controller,
                "notice_id": terms.notice.notice_id,
                "notice_version": terms.notice.version,
                "notice_sha256": terms.notice.content_sha256,
                "language": terms.language,
                "purposes": _json_list(terms.purposes),
                "categories": _json_list(terms.categories),
                "recipients": _json_list(terms.recipients),
                "legal_basis": terms.legal_basis,
                "jurisdiction": terms.jurisdiction,
                "retention_s": terms.retention_s,
                "withdrawal_method": terms.withdrawal_method,
                "valid_from_ns": terms.valid_from_ns,
                "valid_until_ns": terms.valid_until_ns,
                "current_until_ns": terms.valid_until_ns,
                "status": status.value,
                "status_ns": now,
                "created_ns": now,
                "supersedes": supersedes,
            }
        )
        writes.scopes.extend(
            {"record_id": record_id, "recipient": r, "purpose": p}
            for r in sorted(terms.recipients)
            for p in sorted(terms.purposes)
        )
        return self._append(writes, state, events, new=True)

    def _transition(
        self,
        record_id: int,
        status: Status,
        *,
        subject: str | None,
        valid_until_ns: int | None = None,
        notice: Notice | None = None,
        reason: str | None = None,
        end_superseded: bool = False,
        latest_only: bool = False,
    ) -> list[EventReceipt]:
        with self.engine.begin() as conn:
            owner = conn.execute(
                sa.select(t.records.c.subject).where(t.records.c.record_id == record_id)
            ).scalar_one_or_none()
            if owner is None or (subject is not None and owner != subject):
                raise ConsentNotFound("no such consent record")
            bump_subjects(conn, [owner], self.clock())
            now = self.clock()  # the event time is taken once the citizen's state is locked
            state = self._load_state(conn, record_id)
            if state is None:
                raise ConsentNotFound("no such consent record")
            events = plan_transition(state, status, now, valid_until_ns=valid_until_ns, notice=notice)
            if latest_only and _has_successor(conn, record_id):
                raise NoticeChanged("a newer notice was published; answer its request instead")
            writes = _Writes(eventlog.open_for_append(conn))
            out = self._append(writes, state, events, new=False, reason=reason)
            if end_superseded:
                out.extend(self._end_superseded(conn, writes, record_id, now))
            writes.flush(conn)
            return out

    def _end_superseded(
        self, conn: sa.Connection, writes: _Writes, record_id: int, now: int
    ) -> list[EventReceipt]:
        """Withdraw the record a just-answered request replaces, if it still permits processing.

        Follows the chain back through requests left pending by a later notice version to the
        record that was actually active.
        """
        current_id = record_id
        for _ in range(MAX_CHAIN):
            supersedes = conn.execute(
                sa.select(t.records.c.supersedes).where(t.records.c.record_id == current_id)
            ).scalar_one_or_none()
            if supersedes is None:
                return []
            old = self._load_state(conn, supersedes)
            if old is None:
                return []
            current = effective_status(old, now)
            if current is not None and current.permits_processing:
                events = plan_transition(old, Status.WITHDRAWN, now)
                return self._append(writes, old, events, new=False, reason=SUPERSEDED_REASON)
            if current != Status.REQUESTED:
                return []
            current_id = supersedes
        return []

    def _load_state(self, conn: sa.Connection, record_id: int) -> RecordState | None:
        row = conn.execute(sa.select(t.records).where(t.records.c.record_id == record_id)).first()
        if row is None:
            return None
        evs = conn.execute(
            sa.select(t.events.c.status, t.events.c.at_ns, t.events.c.valid_until_ns)
            .where(t.events.c.record_id == record_id)
            .order_by(t.events.c.event_seq)
        ).all()
        return RecordState(
            record_id,
            _terms_from_row(row),
            tuple(ConsentEvent(Status(e.status), e.at_ns, e.valid_until_ns) for e in evs),
        )

    def _append(
        self,
        writes: _Writes,
        state: RecordState,
        new_events: Sequence[ConsentEvent],
        *,
        new: bool,
        reason: str | None = None,
    ) -> list[EventReceipt]:
        """Queue the events of one record: receipt, log leaf, event row, state and grants."""
        out: list[EventReceipt] = []
        log = writes.log
        for event in new_events:
            state = apply_event(state, event)
            receipt_id = str(uuid.uuid4())
            size = log.size
            claims = build_receipt_claims(
                record_id=state.record_id,
                terms=state.terms,
                event=event,
                receipt_id=receipt_id,
                log_index=size,
                public_key=self.signer.public_key,
                controller=self.controller,
                reason=reason,
            )
            jws = sign_receipt(claims, self.signer)
            leaf = canonical_json(
                {
                    "v": 1,
                    "type": "civitas.consent.event",
                    "record_id": str(uuid.UUID(int=state.record_id)),
                    "subject": state.terms.subject,
                    "status": event.status.value,
                    "at_ns": event.at_ns,
                    "valid_until_ns": event.valid_until_ns,
                    "receipt_id": receipt_id,
                    "receipt_sha256": hashlib.sha256(jws.encode()).hexdigest(),
                }
            )
            writes.events.append(
                {
                    "record_id": state.record_id,
                    "subject": state.terms.subject,
                    "status": event.status.value,
                    "at_ns": event.at_ns,
                    "valid_until_ns": event.valid_until_ns,
                    "log_index": size,
                    "leaf": leaf,
                    "receipt_id": receipt_id,
                    "receipt_jws": jws,
                }
            )
            log.append(leaf)
            out.append(EventReceipt(state.record_id, event.status, event.at_ns, size, receipt_id, jws))
        last = state.events[-1]
        if not new:
            writes.updates.append(
                {
                    "rid": state.record_id,
                    "st": last.status.value,
                    "st_ns": last.at_ns,
                    "until": state.valid_until_ns,
                }
            )
            writes.regrant.append(state.record_id)
        writes.grants.extend(
            {"record_id": state.record_id, "start_ns": s, "end_ns": e} for s, e in grant_intervals(state)
        )
        return out

    def _views(self, conn: sa.Connection, stmt: sa.Select[Any]) -> list[RecordView]:
        now = self.clock()
        rows = conn.execute(stmt).all()
        ids = [r.record_id for r in rows]
        by_record: dict[int, list[tuple[ConsentEvent, str]]] = {i: [] for i in ids}
        for part in chunks(ids):
            for e in conn.execute(
                sa.select(
                    t.events.c.record_id,
                    t.events.c.status,
                    t.events.c.at_ns,
                    t.events.c.valid_until_ns,
                    t.events.c.receipt_id,
                )
                .where(t.events.c.record_id.in_(part))
                .order_by(t.events.c.event_seq)
            ):
                by_record[e.record_id].append(
                    (ConsentEvent(Status(e.status), e.at_ns, e.valid_until_ns), e.receipt_id)
                )
        views = []
        for row in rows:
            terms = _terms_from_row(row)
            evs = tuple(by_record[row.record_id])
            state = RecordState(row.record_id, terms, tuple(e for e, _ in evs))
            status = Status(row.status)
            views.append(
                RecordView(
                    record_id=row.record_id,
                    terms=terms,
                    status=status,
                    effective_status=effective_status(state, now) or status,
                    status_ns=row.status_ns,
                    current_until_ns=row.current_until_ns,
                    created_ns=row.created_ns,
                    supersedes=row.supersedes,
                    events=evs,
                )
            )
        return views
