from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.predicates import PredicateError, age_on, derive

TODAY = dt.date(2026, 3, 1)


def test_derive_full() -> None:
    claims = {"birthdate": "1950-06-15", "address": {"locality": "  Civitas  "}, "student": True}
    assert derive(claims, today=TODAY) == {
        "age_over_18": True,
        "age_over_65": True,
        "resident_of": "civitas",
        "concession": "senior",
    }


@pytest.mark.parametrize(
    ("birthdate", "today", "over_18"),
    [
        ("2008-03-01", dt.date(2026, 3, 1), True),  # 18th birthday today
        ("2008-03-02", dt.date(2026, 3, 1), False),  # tomorrow
        ("2008-02-29", dt.date(2026, 2, 28), False),  # leap-day birthday, common year
        ("2008-02-29", dt.date(2026, 3, 1), True),
        ("2008-02-29", dt.date(2028, 2, 29), True),
    ],
)
def test_age_boundaries(birthdate: str, today: dt.date, over_18: bool) -> None:
    assert derive({"birthdate": birthdate}, today=today)["age_over_18"] is over_18


def test_concession_priority_and_none() -> None:
    assert derive({"disability": True, "student": True}, today=TODAY)["concession"] == "disability"
    assert derive({"low_income": True, "student": True}, today=TODAY)["concession"] == "low_income"
    assert derive({"birthdate": "2000-01-01"}, today=TODAY)["concession"] == "none"


def test_only_derivable_predicates() -> None:
    assert derive({}, today=TODAY) == {"concession": "none"}


@pytest.mark.parametrize(
    "claims",
    [
        {"birthdate": "01/02/1990"},
        {"birthdate": "2030-01-01"},
        {"address": {"locality": ""}},
        {"student": "yes"},
    ],
)
def test_malformed(claims: dict[str, object]) -> None:
    with pytest.raises(PredicateError):
        derive(claims, today=TODAY)


@given(
    st.dates(max_value=dt.date(2026, 1, 1)),
    st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2100, 1, 1)),
)
def test_age_matches_year_arithmetic(born: dt.date, today: dt.date) -> None:
    age = age_on(born, today)

    # turning `age` happened on or before today; turning `age + 1` lies after today
    def anniversary(years: int) -> dt.date:
        try:
            return born.replace(year=born.year + years)
        except ValueError:  # 29 February in a common year
            return dt.date(born.year + years, 3, 1)

    assert anniversary(age) <= today
    if born.year + age + 1 <= 9999:
        assert anniversary(age + 1) > today
