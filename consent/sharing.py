"""Sharing with agencies: cursor-paginated pulls, the access log, and the analytics contract.

A stored personal reading names the set of consent records that permitted it at ingest. At read
time it is shared with recipient A for purpose P only if one of those records, *now*:

* allows (A, P) (`consent_scopes`),
* still permits processing (status given/renewed and not past its validity end), and
* has a grant interval covering the reading's whole minute (`consent_grants`).

So a withdrawal (or revocation, or expiry) stops all further sharing under that record at once,
including of readings that were in flight when it was accepted. Public-sensor readings
(no grant set) are always shared. Every page handed to an agency writes one access-log row per
(citizen, category) in the same transaction: who received how many readings, when, for what.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from consent import tables as t
from consent.records import MINUTE_NS, ConsentError
from consent.sqlutil import read_connection
from consent.vocab import PURPOSES, Status

__all__ = [
    "MAX_PAGE",
    "AccessLogEntry",
    "PurposeNotDeclared",
    "SharePage",
    "SharedReading",
    "access_log",
    "analytics_readings_select",
    "declared_purposes",
    "permitted_readings_filter",
    "purge_readings",
    "register_recipient",
    "share_page",
]

MAX_PAGE = 5_000
_ACTIVE = (Status.GIVEN.value, Status.RENEWED.value)


class PurposeNotDeclared(ConsentError):
    """The agency did not declare this purpose (or is not a registered recipient)."""


class InvalidCursor(ConsentError):
    """The pagination cursor is malformed."""


@dataclass(frozen=True)
class SharedReading:
    id: int
    unit: str
    stream: str
    category: str
    district: str
    ts_ns: int
    value: float

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "stream": self.stream,
            "category": self.category,
            "district": self.district,
            "ts_ns": self.ts_ns,
            "value": self.value,
        }


@dataclass(frozen=True)
class SharePage:
    readings: list[SharedReading]
    next_cursor: str | None  # None: nothing more right now (ask again later with the last cursor)
    cursor: str  # the position after this page; always usable to continue later


@dataclass(frozen=True)
class AccessLogEntry:
    recipient: str
    purpose: str
    category: str
    count: int
    first_ts_ns: int
    last_ts_ns: int
    at_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient,
            "purpose": self.purpose,
            "category": self.category,
            "count": self.count,
            "first_ts_ns": self.first_ts_ns,
            "last_ts_ns": self.last_ts_ns,
            "at_ns": self.at_ns,
        }


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(b"r1" + last_id.to_bytes(8, "big")).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor("malformed cursor") from None
    if len(raw) != 10 or raw[:2] != b"r1":
        raise InvalidCursor("malformed cursor")
    return int.from_bytes(raw[2:], "big")


def register_recipient(
    engine: sa.Engine, *, client_id: str, name: str, purposes: Iterable[str], now_ns: int
) -> None:
    """Register (or update) an agency and the purposes it declares."""
    declared = sorted(set(purposes))
    unknown = [p for p in declared if p not in PURPOSES]
    if not declared or unknown:
        raise PurposeNotDeclared(f"declare 1+ known DPV purposes (unknown: {unknown})")
    if not 0 < len(client_id) <= 64 or not 0 < len(name) <= 200:
        raise ConsentError("client id 1..64 and name 1..200 characters")
    with engine.begin() as conn:
        updated = conn.execute(
            sa.update(t.recipients)
            .where(t.recipients.c.client_id == client_id)
            .values(name=name, purposes=json.dumps(declared))
        )
        if updated.rowcount == 0:
            conn.execute(
                sa.insert(t.recipients).values(
                    client_id=client_id, name=name, purposes=json.dumps(declared), registered_ns=now_ns
                )
            )


def declared_purposes(conn: sa.Connection, client_id: str) -> frozenset[str]:
    raw = conn.execute(
        sa.select(t.recipients.c.purposes).where(t.recipients.c.client_id == client_id)
    ).scalar_one_or_none()
    return frozenset() if raw is None else frozenset(json.loads(raw))


def permitted_readings_filter(recipient: str, purpose: str, now_ns: int) -> sa.ColumnElement[bool]:
    """WHERE clause over `consent_readings`: the reading may flow to (recipient, purpose) now."""
    r, m, s, g, rec = t.readings, t.grant_set_members, t.scopes, t.grants, t.records
    consented = (
        sa.select(sa.literal(1))
        .select_from(m)
        .join(s, s.c.record_id == m.c.record_id)
        .join(rec, rec.c.record_id == m.c.record_id)
        .join(g, g.c.record_id == m.c.record_id)
        .where(
            m.c.set_id == r.c.grant_set_id,
            s.c.recipient == recipient,
            s.c.purpose == purpose,
            rec.c.status.in_(_ACTIVE),
            rec.c.current_until_ns > now_ns,
            g.c.start_ns <= r.c.ts_ns,
            r.c.ts_ns + MINUTE_NS <= g.c.end_ns,
        )
        .exists()
    )
    kept = r.c.retain_until_ns > now_ns  # retention follows the clock, like expiry
    return sa.or_(r.c.grant_set_id.is_(None), sa.and_(kept, consented))


def analytics_readings_select(
    *, recipient: str, purpose: str, start_ns: int, end_ns: int, now_ns: int | None = None
) -> sa.Select[Any]:
    """Consented, minimised readings for analytics (the DP privacy unit is `unit`).

    Columns: unit (owner pseudonym, or public device id), stream, district, ts_ns (minute), value.
    Covers readings with start_ns <= ts_ns < end_ns that consent allows `recipient` to process
    for `purpose` now, plus every public-sensor reading in the range.
    """
    now = time.time_ns() if now_ns is None else now_ns
    r = t.readings
    return sa.select(
        r.c.unit.label("unit"),
        r.c.stream.label("stream"),
        r.c.district.label("district"),
        r.c.ts_ns.label("ts_ns"),
        r.c.value.label("value"),
    ).where(
        r.c.ts_ns >= start_ns,
        r.c.ts_ns < end_ns,
        permitted_readings_filter(recipient, purpose, now),
    )


def share_page(
    engine: sa.Engine,
    *,
    recipient: str,
    purpose: str,
    cursor: str | None,
    limit: int,
    now_ns: int,
) -> SharePage:
    """One page of readings for an agency; logs the disclosure for each citizen concerned."""
    if not 0 < limit <= MAX_PAGE:
        raise ConsentError(f"limit must be 1..{MAX_PAGE}")
    after = decode_cursor(cursor)
    r = t.readings
    with engine.begin() as conn:
        if purpose not in declared_purposes(conn, recipient):
            raise PurposeNotDeclared("the recipient did not declare this purpose")
        rows = conn.execute(
            sa.select(
                r.c.id,
                r.c.unit,
                r.c.stream,
                r.c.category,
                r.c.district,
                r.c.ts_ns,
                r.c.value,
                r.c.grant_set_id,
            )
            .where(r.c.id > after, permitted_readings_filter(recipient, purpose, now_ns))
            .order_by(r.c.id)
            .limit(limit)
        ).all()
        groups: dict[tuple[str, str], list[int]] = {}
        for row in rows:
            if row.grant_set_id is not None:  # personal data: log the disclosure
                groups.setdefault((row.unit, row.category), []).append(row.ts_ns)
        if groups:
            conn.execute(
                sa.insert(t.access_log),
                [
                    {
                        "subject": unit,
                        "recipient": recipient,
                        "purpose": purpose,
                        "category": category,
                        "count": len(ts),
                        "first_ts_ns": min(ts),
                        "last_ts_ns": max(ts),
                        "at_ns": now_ns,
                    }
                    for (unit, category), ts in sorted(groups.items())
                ],
            )
    readings = [SharedReading(x.id, x.unit, x.stream, x.category, x.district, x.ts_ns, x.value) for x in rows]
    last = readings[-1].id if readings else after
    position = encode_cursor(last)
    return SharePage(readings, position if len(readings) == limit else None, position)


def purge_readings(engine: sa.Engine, *, now_ns: int, batch: int = 10_000) -> int:
    """Delete personal readings past their retention (sharing already ignores them); returns count."""
    r = t.readings
    total = 0
    while True:
        with engine.begin() as conn:
            ids = (
                conn.execute(
                    sa.select(r.c.id)
                    .where(r.c.retain_until_ns.is_not(None), r.c.retain_until_ns <= now_ns)
                    .limit(batch)
                )
                .scalars()
                .all()
            )
            if ids:
                conn.execute(sa.delete(r).where(r.c.id.in_(ids)))
        total += len(ids)
        if len(ids) < batch:
            return total


def access_log(
    engine: sa.Engine, subject: str, *, limit: int = 1_000, before_id: int | None = None
) -> list[AccessLogEntry]:
    """What was disclosed about one citizen: newest first."""
    a = t.access_log
    stmt = (
        sa.select(a).where(a.c.subject == subject).order_by(a.c.id.desc()).limit(min(max(limit, 1), 10_000))
    )
    if before_id is not None:
        stmt = stmt.where(a.c.id < before_id)
    with read_connection(engine) as conn:
        rows = conn.execute(stmt).all()
    return [
        AccessLogEntry(
            x.recipient, x.purpose, x.category, x._mapping["count"], x.first_ts_ns, x.last_ts_ns, x.at_ns
        )
        for x in rows
    ]
