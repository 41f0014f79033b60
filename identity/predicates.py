"""Derived predicate claims, computed by the issuer from raw claims at issuance time.

Verifiers ask for these instead of raw data: ``age_over_18`` / ``age_over_65`` instead of a
birthdate, ``resident_of`` instead of an address, ``concession`` instead of income or health data.

Raw claims read (all optional):

* ``birthdate``: ``YYYY-MM-DD``
* ``address``: object with ``locality`` (city name) — or a top-level ``locality``
* ``student``, ``disability``, ``low_income``: booleans

``resident_of`` is the canonical (lower-case, trimmed) locality name. ``concession`` is the first
applicable category of ``disability``, ``senior`` (65+), ``low_income``, ``student``; ``"none"``
when nothing applies. Ages use an injectable ``today``; someone born on 29 February turns a year
older on 1 March in common years.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "CONCESSION_ORDER",
    "PREDICATE_CLAIMS",
    "PredicateError",
    "age_on",
    "derive",
    "parse_birthdate",
]

PREDICATE_CLAIMS: Final = ("age_over_18", "age_over_65", "resident_of", "concession")
CONCESSION_ORDER: Final = ("disability", "senior", "low_income", "student")


class PredicateError(ValueError):
    """A raw claim needed for a predicate is malformed."""


def parse_birthdate(value: Any) -> dt.date:
    if not isinstance(value, str) or len(value) != 10:
        raise PredicateError("birthdate must be YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise PredicateError("birthdate must be YYYY-MM-DD") from exc


def age_on(birthdate: dt.date, today: dt.date) -> int:
    """Completed years of age on ``today``."""
    if birthdate > today:
        raise PredicateError("birthdate lies in the future")
    before_birthday = (today.month, today.day) < (birthdate.month, birthdate.day)
    return today.year - birthdate.year - int(before_birthday)


def _locality(claims: Mapping[str, Any]) -> str | None:
    address = claims.get("address")
    locality = address.get("locality") if isinstance(address, Mapping) else claims.get("locality")
    if locality is None:
        return None
    if not isinstance(locality, str) or not locality.strip():
        raise PredicateError("locality must be a non-empty string")
    return " ".join(locality.split()).lower()


def _flag(claims: Mapping[str, Any], name: str) -> bool:
    value = claims.get(name, False)
    if not isinstance(value, bool):
        raise PredicateError(f"{name} must be a boolean")
    return value


def derive(claims: Mapping[str, Any], *, today: dt.date) -> dict[str, Any]:
    """Predicate claims derivable from ``claims`` (only those whose inputs are present)."""
    out: dict[str, Any] = {}
    senior = False
    if "birthdate" in claims:
        age = age_on(parse_birthdate(claims["birthdate"]), today)
        out["age_over_18"] = age >= 18
        out["age_over_65"] = senior = age >= 65
    locality = _locality(claims)
    if locality is not None:
        out["resident_of"] = locality
    applicable = {
        "disability": _flag(claims, "disability"),
        "senior": senior,
        "low_income": _flag(claims, "low_income"),
        "student": _flag(claims, "student"),
    }
    out["concession"] = next((c for c in CONCESSION_ORDER if applicable[c]), "none")
    return out
