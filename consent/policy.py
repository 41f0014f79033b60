"""The policy decision index: which consent records permit a reading; pure, no I/O.

A reading is decided on its minute bucket ``m`` (its timestamp truncated to the minute, which
is also what is stored): record R permits it iff R covers the reading's category and one of R's
grant intervals [s, e) contains the whole minute, ``s <= m`` and ``m + 1 min <= e``. Deciding on
the whole minute keeps the decision identical to the SQL re-check made at read time on the
stored (minute-truncated) timestamp, and guarantees that a reading after a withdrawal at T is
never permitted (its minute ends after T).

Per (subject, category) the index holds the boundaries of all grant intervals and, for each
elementary segment between two boundaries, the set of records active there (a `GrantSet`). A
decision is a dict lookup plus one bisection: its cost depends on the number of records of that
one citizen and category, not on the total number of consent records.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from consent.records import MINUTE_NS

__all__ = [
    "Grant",
    "GrantSet",
    "PolicyIndex",
    "bucket_of",
    "decide_brute_force",
    "grant_set_id",
    "permits",
]

_SET_DOMAIN = b"civitas/consent/grant-set/v1\x00"


def bucket_of(ts_ns: int) -> int:
    """The minute bucket (start of the UTC minute) of a timestamp."""
    return ts_ns - ts_ns % MINUTE_NS


def permits(start_ns: int, end_ns: int, bucket_ns: int) -> bool:
    """Whether grant interval [start, end) covers the whole minute starting at `bucket_ns`."""
    return start_ns <= bucket_ns and bucket_ns + MINUTE_NS <= end_ns


def grant_set_id(record_ids: Sequence[int]) -> int:
    """A 128-bit id naming a sorted set of record ids (the same in every process)."""
    digest = hashlib.sha256(_SET_DOMAIN + b"".join(r.to_bytes(16, "big") for r in record_ids))
    return int.from_bytes(digest.digest()[:16], "big")


@dataclass(frozen=True)
class Grant:
    """What one consent record permits: categories, purposes, recipients, in which intervals."""

    record_id: int
    subject: str
    categories: frozenset[str]
    purposes: frozenset[str]
    recipients: frozenset[str]
    intervals: tuple[tuple[int, int], ...]
    retention_s: int = 0  # how long readings it permits may be kept (0: not at all)


@dataclass(frozen=True)
class GrantSet:
    """The records permitting a reading, and the (recipient, purpose) flows they allow."""

    set_id: int
    record_ids: tuple[int, ...]
    grants: tuple[Grant, ...] = field(repr=False, compare=False)
    retention_ns: int = 0  # the longest retention among the records: readings are kept that long

    @cached_property
    def flows(self) -> frozenset[tuple[str, str]]:
        return frozenset((r, p) for g in self.grants for r in g.recipients for p in g.purposes)

    def allows(self, recipient: str, purpose: str) -> bool:
        return any(recipient in g.recipients and purpose in g.purposes for g in self.grants)


def _make_set(grants: Sequence[Grant]) -> GrantSet:
    ids = tuple(sorted(g.record_id for g in grants))
    retention_ns = max(g.retention_s for g in grants) * 1_000_000_000
    return GrantSet(grant_set_id(ids), ids, tuple(grants), retention_ns)


class _Segments:
    """Elementary segments of one (subject, category): boundaries and the set active in each."""

    __slots__ = ("bounds", "sets")

    def __init__(self, grants: Sequence[Grant], interned: dict[tuple[int, ...], GrantSet]) -> None:
        # In bucket space a grant [s, e) permits buckets m with s <= m < e - MINUTE + 1.
        spans: list[tuple[int, int, Grant]] = []
        for grant in grants:
            for start, end in grant.intervals:
                last = end - MINUTE_NS + 1
                if start < last:
                    spans.append((start, last, grant))
        bounds = sorted({b for s, e, _ in spans for b in (s, e)})
        sets: list[GrantSet | None] = []
        for i in range(len(bounds) - 1):
            lo = bounds[i]
            active = [g for s, e, g in spans if s <= lo < e]
            if not active:
                sets.append(None)
                continue
            unique = {g.record_id: g for g in active}
            key = tuple(sorted(unique))
            found = interned.get(key)
            if found is None:
                found = _make_set([unique[k] for k in key])
                interned[key] = found
            sets.append(found)
        self.bounds = bounds
        self.sets = sets

    def lookup(self, bucket_ns: int) -> GrantSet | None:
        i = bisect.bisect_right(self.bounds, bucket_ns) - 1
        if i < 0 or i >= len(self.sets):
            return None
        return self.sets[i]


class PolicyIndex:
    """In-memory decision index over grants, replaced one subject at a time."""

    def __init__(self) -> None:
        self._segments: dict[tuple[str, str], _Segments] = {}
        self._keys_by_subject: dict[str, list[tuple[str, str]]] = {}
        self._grants_by_subject: dict[str, tuple[Grant, ...]] = {}
        self._interned: dict[tuple[int, ...], GrantSet] = {}

    def __len__(self) -> int:
        return sum(len(g) for g in self._grants_by_subject.values())

    def subjects(self) -> list[str]:
        return list(self._grants_by_subject)

    def grants_of(self, subject: str) -> tuple[Grant, ...]:
        return self._grants_by_subject.get(subject, ())

    def replace_subject(self, subject: str, grants: Iterable[Grant]) -> list[GrantSet]:
        """Install the complete set of grants of one subject (replacing what was there).

        Returns the grant sets the subject's decisions can now produce.
        """
        own = tuple(grants)
        for grant in own:
            if grant.subject != subject:
                raise ValueError("grant of another subject")
        for key in self._keys_by_subject.pop(subject, []):
            self._segments.pop(key, None)
        self._grants_by_subject.pop(subject, None)
        if not own:
            return []
        by_category: dict[str, list[Grant]] = {}
        for grant in own:
            for category in grant.categories:
                by_category.setdefault(category, []).append(grant)
        keys = []
        produced: dict[int, GrantSet] = {}
        for category, grants_of_category in by_category.items():
            key = (subject, category)
            segments = _Segments(grants_of_category, self._interned)
            self._segments[key] = segments
            keys.append(key)
            produced.update((gs.set_id, gs) for gs in segments.sets if gs is not None)
        self._keys_by_subject[subject] = keys
        self._grants_by_subject[subject] = own
        return list(produced.values())

    def decide(self, subject: str, category: str, ts_ns: int) -> GrantSet | None:
        """The records permitting a reading of `category` by `subject` at `ts_ns`, or None."""
        segments = self._segments.get((subject, category))
        if segments is None:
            return None
        return segments.lookup(ts_ns - ts_ns % MINUTE_NS)

    def decider(self, subject: str, category: str) -> _Segments | None:
        """The segment table of one (subject, category), for deciding many readings at once."""
        return self._segments.get((subject, category))


def decide_brute_force(grants: Iterable[Grant], subject: str, category: str, ts_ns: int) -> tuple[int, ...]:
    """Reference decision: scan every grant (used by tests and as the bench baseline's twin)."""
    bucket = bucket_of(ts_ns)
    ids = {
        g.record_id
        for g in grants
        if g.subject == subject
        and category in g.categories
        and any(permits(s, e, bucket) for s, e in g.intervals)
    }
    return tuple(sorted(ids))
