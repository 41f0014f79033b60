from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import dcql
from identity.eligibility import EligibilityError, compile_expression, parse_rule
from identity.predicates import derive

VCT = "https://city.example/credentials/resident"
TODAY = dt.date(2026, 1, 1)


def test_senior_fare() -> None:
    rule = parse_rule('senior_fare = resident_of == "civitas" and age_over_65')
    assert rule.name == "senior_fare"
    assert rule.claim_names == ("resident_of", "age_over_65")
    assert rule.decide({"resident_of": "civitas", "age_over_65": True}).eligible
    assert not rule.decide({"resident_of": "elsewhere", "age_over_65": True}).eligible
    assert not rule.decide({"resident_of": "civitas", "age_over_65": False}).eligible
    missing = rule.decide({"resident_of": "civitas"})
    assert not missing.eligible and "age_over_65" in missing.reason


def test_dcql_prefers_predicates_with_birthdate_fallback() -> None:
    rule = parse_rule('senior_fare = resident_of == "civitas" and age_over_65')
    query = rule.dcql(vct_values=[VCT])
    parsed = dcql.parse_query(query)
    sdq = parsed.credentials[0]
    assert sdq.format == "dc+sd-jwt" and parsed.credentials[1].format == dcql.BBS_FORMAT
    assert [c.path for c in sdq.claims or ()] == [("resident_of",), ("age_over_65",), ("birthdate",)]
    assert sdq.claim_sets == (("resident_of", "age_over_65"), ("resident_of", "birthdate"))
    assert (sdq.claims or ())[0].values == ("civitas",)
    assert (sdq.claims or ())[1].values is None  # never pinned: see the module docstring

    # A wallet holding predicates discloses the predicates, not the birthdate.
    raw = {"birthdate": "1950-05-05", "address": {"locality": "Civitas"}}
    held = dcql.HeldCredential("dc+sd-jwt", VCT, {"vct": VCT, **raw, **derive(raw, today=TODAY)})
    sel = dcql.evaluate(parsed, [held])
    (match,) = sel.matches["eligibility"]
    assert sorted(match.paths) == [("age_over_65",), ("resident_of",)]
    assert rule.decide(match.disclosed_values()).eligible

    # A legacy credential without predicates falls back to the birthdate; the decision derives it.
    legacy = dcql.HeldCredential(
        "dc+sd-jwt", VCT, {"vct": VCT, "birthdate": "1950-05-05", "resident_of": "civitas"}
    )
    (match,) = dcql.evaluate(parsed, [legacy]).matches["eligibility"]
    assert sorted(match.paths) == [("birthdate",), ("resident_of",)]
    assert rule.decide(match.disclosed_values(), today=TODAY).eligible
    assert not rule.decide(match.disclosed_values()).eligible  # no today: no derivation

    # Not resident: the value constraint means the wallet finds no match and discloses nothing.
    outsider = dcql.HeldCredential(
        "dc+sd-jwt", VCT, {"vct": VCT, "resident_of": "elsewhere", "age_over_65": True}
    )
    assert not dcql.evaluate(parsed, [outsider]).satisfied


def test_disjunction_has_no_value_pins() -> None:
    rule = parse_rule('any_concession = concession != "none" or age_over_65')
    q = dcql.parse_query(rule.dcql(vct_values=[VCT], formats=["dc+sd-jwt"]))
    assert all(c.values is None for c in q.credentials[0].claims or ())
    assert q.credential_sets is None
    assert rule.decide({"concession": "student", "age_over_65": False}).eligible
    assert not rule.decide({"concession": "none", "age_over_65": False}).eligible


@pytest.mark.parametrize(
    ("expr", "claims", "expected"),
    [
        ('resident_of in ["civitas", "suburbia"]', {"resident_of": "suburbia"}, True),
        ('resident_of in ["civitas"]', {"resident_of": "x"}, False),
        ("not age_over_18", {"age_over_18": False}, True),
        ("age_over_18 == false", {"age_over_18": False}, True),
        ("household_size >= 4", {"household_size": 4}, True),
        ("household_size < 4", {"household_size": 4}, False),
        ("household_size > 2", {"household_size": True}, False),
        ('address.locality == "civitas"', {"address": {"locality": "civitas"}}, True),
        ("(a or b) and not c", {"a": False, "b": True, "c": False}, True),
        ("a == 1", {"a": True}, False),  # type-exact
        ("a == 'it\\'s'", {"a": "it's"}, True),
    ],
)
def test_expressions(expr: str, claims: dict[str, object], expected: bool) -> None:
    assert parse_rule(f"r = {expr}").decide(claims).eligible is expected


@pytest.mark.parametrize(
    "bad",
    [
        "r = ",
        "r == a",
        "= a",
        "r = a and",
        "r = (a",
        "r = a == ",
        "r = a < 'x'",
        "r = a in 1",
        "r = __import__('os')",
        "r = a; b",
        "r = and",
        "r = " + "(" * 100 + "a" + ")" * 100,
        "r = " + " or ".join(["a"] * 300),
    ],
)
def test_rejects_bad_rules(bad: str) -> None:
    with pytest.raises(EligibilityError):
        parse_rule(bad)


names = st.sampled_from(["a", "b", "c"])


def _expr(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return names
    sub = _expr(depth - 1)
    return st.one_of(
        names,
        st.tuples(sub, sub).map(lambda t: f"({t[0]} and {t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"({t[0]} or {t[1]})"),
        sub.map(lambda s: f"not {s}"),
    )


@given(_expr(3), st.fixed_dictionaries({"a": st.booleans(), "b": st.booleans(), "c": st.booleans()}))
def test_boolean_semantics_match_python(expr: str, env: dict[str, bool]) -> None:
    # Python's own boolean operators on a trusted, generated string are the oracle here.
    expected = eval(expr, {"__builtins__": {}}, dict(env))
    assert parse_rule(f"r = {expr}").decide(env).eligible is expected
    assert compile_expression(expr) is not None
