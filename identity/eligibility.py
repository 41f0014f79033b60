"""Named eligibility rules: a tiny expression language compiled to a DCQL query and a decision.

    senior_fare = resident_of == "civitas" and age_over_65
    youth_pass  = age_over_18 == false and resident_of in ["civitas", "suburbia"]
    concession  = concession != "none" or age_over_65

Grammar (no ``eval``; a hand-written recursive-descent parser with size limits)::

    rule       := NAME "=" expr
    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")" | claim [op literal | "in" "[" literal ("," literal)* "]"]
    op         := "==" | "!=" | "<" | "<=" | ">" | ">="
    claim      := NAME ("." NAME)*          (a claim path; a bare claim means "is true")
    literal    := "..." | '...' | integer | true | false

The DCQL query requests exactly the claims the expression names. When the expression is a plain
conjunction, equality tests become DCQL ``values`` so a wallet that does not qualify discloses
nothing. Age predicates get a ``claim_sets`` fallback to ``birthdate`` for credentials issued
without predicates (the derived predicate is preferred, listed first; the decision then derives
it from the birthdate). Age predicates are never value-pinned: with a pin, a wallet whose
predicate is false would fall through to the birthdate set and disclose more, not less.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from identity import dcql, predicates

__all__ = ["Decision", "EligibilityError", "Rule", "compile_expression", "parse_rule"]

MAX_EXPRESSION_CHARS: Final = 2000
MAX_NODES: Final = 200
MAX_DEPTH: Final = 32
AGE_FALLBACK: Final = {"age_over_18": 18, "age_over_65": 65}

Literal = str | int | bool


class EligibilityError(ValueError):
    """A rule that does not parse or cannot be evaluated."""


# --------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True, slots=True)
class Claim:
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Compare:
    claim: Claim
    op: str
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Claim | Compare | BoolOp | Not

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<int>-?\d+)
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false"})


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise EligibilityError(f"unexpected character at {pos}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_EXPRESSION_CHARS:
            raise EligibilityError("expression too long")
        self.toks = _tokens(text)
        self.i = 0
        self.nodes = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise EligibilityError("unexpected end of expression")
        self.i += 1
        return tok

    def _accept(self, value: str) -> bool:
        tok = self._peek()
        if tok is not None and tok[1] == value and tok[0] in ("op", "name"):
            self.i += 1
            return True
        return False

    def _count(self, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise EligibilityError("expression too complex")

    def parse(self) -> Node:
        node = self._or(0)
        extra = self._peek()
        if extra is not None:
            raise EligibilityError(f"unexpected {extra[1]!r}")
        return node

    def _or(self, depth: int) -> Node:
        self._count(depth)
        items = [self._and(depth + 1)]
        while self._accept("or"):
            items.append(self._and(depth + 1))
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def _and(self, depth: int) -> Node:
        self._count(depth)
        items = [self._not(depth + 1)]
        while self._accept("and"):
            items.append(self._not(depth + 1))
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def _not(self, depth: int) -> Node:
        self._count(depth)
        if self._accept("not"):
            return Not(self._not(depth + 1))
        return self._atom(depth + 1)

    def _literal(self) -> Literal:
        kind, value = self._next()
        if kind == "str":
            body = value[1:-1]
            return re.sub(r"\\(.)", r"\1", body)
        if kind == "int":
            return int(value)
        if kind == "name" and value in ("true", "false"):
            return value == "true"
        raise EligibilityError(f"expected a literal, got {value!r}")

    def _atom(self, depth: int) -> Node:
        self._count(depth)
        if self._accept("("):
            node = self._or(depth + 1)
            if not self._accept(")"):
                raise EligibilityError("missing ')'")
            return node
        kind, value = self._next()
        if kind != "name" or value in _KEYWORDS:
            raise EligibilityError(f"expected a claim name, got {value!r}")
        path = [value]
        while self._accept("."):
            kind, value = self._next()
            if kind != "name" or value in _KEYWORDS:
                raise EligibilityError("expected a claim name after '.'")
            path.append(value)
        claim = Claim(tuple(path))
        tok = self._peek()
        if tok is not None and tok[0] == "op" and tok[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            literal = self._literal()
            if tok[1] not in ("==", "!=") and (not isinstance(literal, int) or isinstance(literal, bool)):
                raise EligibilityError("ordering comparisons need an integer")
            return Compare(claim, tok[1], literal)
        if self._accept("in"):
            if not self._accept("["):
                raise EligibilityError("expected '[' after in")
            items = [self._literal()]
            while self._accept(","):
                items.append(self._literal())
            if not self._accept("]"):
                raise EligibilityError("missing ']'")
            return Compare(claim, "in", tuple(items))
        return claim


def compile_expression(text: str) -> Node:
    return _Parser(text).parse()


def _claims_of(node: Node) -> list[Claim]:
    if isinstance(node, Claim):
        return [node]
    if isinstance(node, Compare):
        return [node.claim]
    if isinstance(node, Not):
        return _claims_of(node.item)
    return [c for item in node.items for c in _claims_of(item)]


def _conjuncts(node: Node) -> list[Node] | None:
    """The conjuncts when the expression is a pure conjunction of positive tests, else None."""
    items = list(node.items) if isinstance(node, BoolOp) and node.op == "and" else [node]
    if all(isinstance(i, Claim) or (isinstance(i, Compare) and i.op in ("==", "in")) for i in items):
        return items
    return None


# --------------------------------------------------------------------------------------------
# evaluation


@dataclass(frozen=True, slots=True)
class Decision:
    eligible: bool
    reason: str
    used_claims: tuple[str, ...]


class _Missing(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _lookup(claims: Mapping[str, Any], claim: Claim, today: dt.date | None) -> Any:
    node: Any = claims
    for key in claim.path:
        if not isinstance(node, Mapping) or key not in node:
            node = None
            break
        node = node[key]
    else:
        return node
    if len(claim.path) == 1 and claim.path[0] in AGE_FALLBACK and "birthdate" in claims and today is not None:
        try:
            age = predicates.age_on(predicates.parse_birthdate(claims["birthdate"]), today)
        except predicates.PredicateError as exc:
            raise EligibilityError(str(exc)) from exc
        return age >= AGE_FALLBACK[claim.path[0]]
    raise _Missing(claim.name)


def _eval(node: Node, claims: Mapping[str, Any], today: dt.date | None) -> bool:
    if isinstance(node, Claim):
        return _lookup(claims, node, today) is True
    if isinstance(node, Compare):
        value = _lookup(claims, node.claim, today)
        target = node.value
        if node.op == "in":
            if not isinstance(target, tuple):
                raise EligibilityError("'in' needs a list")
            return any(type(value) is type(t) and value == t for t in target)
        if node.op in ("==", "!="):
            same = type(value) is type(target) and value == target
            return same if node.op == "==" else not same
        if not isinstance(value, int) or isinstance(value, bool) or not isinstance(target, int):
            return False
        return {"<": value < target, "<=": value <= target, ">": value > target, ">=": value >= target}[
            node.op
        ]
    if isinstance(node, Not):
        return not _eval(node.item, claims, today)
    if node.op == "and":
        return all(_eval(i, claims, today) for i in node.items)
    return any(_eval(i, claims, today) for i in node.items)


# --------------------------------------------------------------------------------------------
# rules


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    expression: str
    ast: Node

    @property
    def claim_names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for c in _claims_of(self.ast):
            seen.setdefault(c.name, None)
        return tuple(seen)

    def decide(self, claims: Mapping[str, Any], *, today: dt.date | None = None) -> Decision:
        """Apply the rule to verified, disclosed claims (``today`` enables the birthdate fallback)."""
        used = self.claim_names
        try:
            ok = _eval(self.ast, claims, today)
        except _Missing as missing:
            return Decision(False, f"claim {missing.name} not disclosed", used)
        return Decision(ok, "rule satisfied" if ok else "rule not satisfied", used)

    def dcql(
        self,
        *,
        vct_values: Sequence[str],
        formats: Sequence[str] = (dcql.SD_JWT_FORMAT, dcql.BBS_FORMAT),
        credential_id: str = "eligibility",
    ) -> dict[str, Any]:
        """A DCQL query (JSON) asking for exactly what the rule needs, predicates preferred."""
        claims: list[dict[str, Any]] = []
        ids: dict[str, str] = {}
        pinned: dict[str, list[Literal]] = {}
        conj = _conjuncts(self.ast)
        if conj is not None:
            for item in conj:
                if isinstance(item, Compare):
                    values = list(item.value) if isinstance(item.value, tuple) else [item.value]
                    pinned[item.claim.name] = values
                elif isinstance(item, Claim):
                    pinned[item.name] = [True]
            # A predicate with a birthdate fallback is never pinned: a wallet whose predicate is
            # false must answer with the predicate, not fall through to disclosing the birthdate.
            for name in AGE_FALLBACK:
                pinned.pop(name, None)
        for c in _claims_of(self.ast):
            if c.name in ids:
                continue
            cid = re.sub(r"[^A-Za-z0-9_-]", "_", c.name)[:64]
            ids[c.name] = cid
            entry: dict[str, Any] = {"id": cid, "path": list(c.path)}
            if c.name in pinned:
                entry["values"] = pinned[c.name]
            claims.append(entry)
        primary = [ids[n] for n in ids]
        claim_sets = [primary]
        ages = [n for n in ids if n in AGE_FALLBACK]
        if ages:
            claims.append({"id": "birthdate", "path": ["birthdate"]})
            claim_sets.append([ids[n] for n in ids if n not in AGE_FALLBACK] + ["birthdate"])
        queries = []
        for i, fmt in enumerate(formats):
            q: dict[str, Any] = {
                "id": credential_id if i == 0 else f"{credential_id}_{i}",
                "format": fmt,
                "meta": {"vct_values": list(vct_values)},
                "claims": claims,
            }
            if len(claim_sets) > 1:
                q["claim_sets"] = claim_sets
            queries.append(q)
        out: dict[str, Any] = {"credentials": queries}
        if len(queries) > 1:
            out["credential_sets"] = [{"options": [[q["id"]] for q in queries]}]
        dcql.parse_query(out)  # what we emit is always valid DCQL
        return out


_RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*=(?!=)(.*)$", re.DOTALL)


def parse_rule(definition: str) -> Rule:
    """Parse ``name = expression``."""
    m = _RULE.match(definition)
    if m is None:
        raise EligibilityError("a rule reads: name = expression")
    expression = m.group(2).strip()
    return Rule(m.group(1), expression, compile_expression(expression))
