"""The policy index decides exactly like a brute-force scan over every grant."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.policy import Grant, PolicyIndex, decide_brute_force, grant_set_id
from consent.records import MINUTE_NS

SUBJECTS = ["s1", "s2", "s3"]
CATEGORIES = ["pd:Location", "pd:VehicleUsage", "cvx:HouseholdEnergyUse"]
PURPOSES = ["dpv:PublicBenefit", "dpv:ServiceProvision"]
RECIPIENTS = ["agency-a", "agency-b"]
SPAN = 120 * MINUTE_NS


def _interval(data: tuple[int, int]) -> tuple[int, int]:
    a, b = sorted(data)
    return a, b + 1


interval = st.tuples(st.integers(0, SPAN), st.integers(0, SPAN)).map(_interval)
grant = st.builds(
    lambda rid, subject, cats, purposes, recipients, intervals: Grant(
        rid, subject, frozenset(cats), frozenset(purposes), frozenset(recipients), tuple(sorted(intervals))
    ),
    st.integers(1, 2**128 - 2),
    st.sampled_from(SUBJECTS),
    st.sets(st.sampled_from(CATEGORIES), min_size=1),
    st.sets(st.sampled_from(PURPOSES), min_size=1),
    st.sets(st.sampled_from(RECIPIENTS), min_size=1),
    st.lists(interval, min_size=0, max_size=3),
)
reading = st.tuples(
    st.sampled_from(SUBJECTS), st.sampled_from(CATEGORIES), st.integers(-MINUTE_NS, SPAN + MINUTE_NS)
)


def _index(grants: list[Grant]) -> PolicyIndex:
    index = PolicyIndex()
    for subject in SUBJECTS:
        index.replace_subject(subject, [g for g in grants if g.subject == subject])
    return index


@settings(max_examples=300, deadline=None)
@given(
    st.lists(grant, max_size=12, unique_by=lambda g: g.record_id), st.lists(reading, min_size=1, max_size=40)
)
def test_index_decision_equals_brute_force(grants: list[Grant], readings: list[tuple[str, str, int]]) -> None:
    index = _index(grants)
    for subject, category, ts in readings:
        expected = decide_brute_force(grants, subject, category, ts)
        got = index.decide(subject, category, ts)
        assert (got.record_ids if got else ()) == expected
        if got is not None:
            assert got.set_id == grant_set_id(expected)
            chosen = [g for g in grants if g.record_id in expected]
            for recipient in RECIPIENTS:
                for purpose in PURPOSES:
                    want = any(recipient in g.recipients and purpose in g.purposes for g in chosen)
                    assert got.allows(recipient, purpose) == want


@settings(max_examples=100, deadline=None)
@given(
    st.lists(grant, max_size=8, unique_by=lambda g: g.record_id),
    st.lists(grant, max_size=8, unique_by=lambda g: g.record_id),
    reading,
)
def test_replacing_a_subject_forgets_its_old_grants(
    old: list[Grant], new: list[Grant], r: tuple[str, str, int]
) -> None:
    index = _index(old)
    for subject in SUBJECTS:
        index.replace_subject(subject, [g for g in new if g.subject == subject])
    subject, category, ts = r
    got = index.decide(subject, category, ts)
    assert (got.record_ids if got else ()) == decide_brute_force(new, subject, category, ts)


def test_a_reading_needs_its_whole_minute_inside_the_grant() -> None:
    g = Grant(
        7,
        "s1",
        frozenset({"pd:Location"}),
        frozenset({"dpv:PublicBenefit"}),
        frozenset({"a"}),
        ((MINUTE_NS + 1, 5 * MINUTE_NS + 30),),
    )
    index = PolicyIndex()
    index.replace_subject("s1", [g])
    assert index.decide("s1", "pd:Location", MINUTE_NS + 2) is None  # minute started before the grant
    assert index.decide("s1", "pd:Location", 2 * MINUTE_NS) is not None
    assert index.decide("s1", "pd:Location", 4 * MINUTE_NS + 59 * 10**9) is not None
    assert index.decide("s1", "pd:Location", 5 * MINUTE_NS) is None  # minute ends after the grant
    assert index.decide("s1", "pd:VehicleUsage", 2 * MINUTE_NS) is None
    assert index.decide("s2", "pd:Location", 2 * MINUTE_NS) is None


def test_decision_cost_does_not_depend_on_other_citizens() -> None:
    """Structure check: a subject's table holds only its own boundaries."""
    index = PolicyIndex()
    for i in range(2_000):
        subject = f"s{i}"
        index.replace_subject(
            subject,
            [
                Grant(
                    i + 1,
                    subject,
                    frozenset({"pd:Location"}),
                    frozenset({"p"}),
                    frozenset({"a"}),
                    ((0, 10 * MINUTE_NS),),
                )
            ],
        )
    decider = index.decider("s5", "pd:Location")
    assert decider is not None and len(decider.bounds) == 2
    assert len(index) == 2_000
