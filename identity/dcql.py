"""DCQL (Digital Credentials Query Language, OpenID4VP 1.0 section 6): model, matching, selection.

Formats understood for matching: ``dc+sd-jwt`` (SD-JWT VC, ``meta.vct_values``) and
:data:`BBS_FORMAT` (Civitas BBS credentials, also selected by ``meta.vct_values``). Queries for
other formats (``mso_mdoc``, ``jwt_vc_json``, ...) parse and validate but never match a credential
held here.

Semantics implemented:

* a claim path is a list of object keys (strings), array indices (non-negative ints) and
  ``null`` (every element of an array); a path that selects nothing does not match;
* ``values``: the claim matches only if a selected value equals one of them (type and value);
* no ``claims``: nothing beyond always-visible claims is requested;
* ``claims`` without ``claim_sets``: every claim is required; with ``claim_sets``: the first set
  (in the verifier's order of preference) whose claims all match is used;
* no ``credential_sets``: every credential query must be satisfied; otherwise each required set
  needs one option whose credential queries are all satisfied (first such option is chosen),
  and optional sets are filled when possible;
* ``multiple: true`` returns every matching credential, otherwise the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "BBS_FORMAT",
    "SD_JWT_FORMAT",
    "ClaimMatch",
    "ClaimsQuery",
    "CredentialMatch",
    "CredentialQuery",
    "CredentialSetQuery",
    "DCQLError",
    "DCQLQuery",
    "HeldCredential",
    "Selection",
    "evaluate",
    "match_credential",
    "parse_query",
    "resolve_path",
]

SD_JWT_FORMAT: Final = "dc+sd-jwt"
BBS_FORMAT: Final = "civitas-bbs"
SD_JWT_FORMATS: Final = frozenset({SD_JWT_FORMAT, "vc+sd-jwt"})
MAX_CREDENTIAL_QUERIES: Final = 32
MAX_CLAIMS: Final = 128
MAX_PATH: Final = 16
MAX_VALUES: Final = 64
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

PathElement = str | int | None
Path = tuple[PathElement, ...]


class DCQLError(ValueError):
    """A DCQL query that does not follow OpenID4VP 1.0 section 6."""


@dataclass(frozen=True, slots=True)
class ClaimsQuery:
    path: Path
    id: str | None = None
    values: tuple[str | int | bool, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": list(self.path)}
        if self.id is not None:
            out["id"] = self.id
        if self.values is not None:
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True, slots=True)
class CredentialQuery:
    id: str
    format: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    claims: tuple[ClaimsQuery, ...] | None = None
    claim_sets: tuple[tuple[str, ...], ...] | None = None
    multiple: bool = False
    require_cryptographic_holder_binding: bool = True

    @property
    def vct_values(self) -> tuple[str, ...] | None:
        values = self.meta.get("vct_values")
        return None if values is None else tuple(values)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "format": self.format, "meta": dict(self.meta)}
        if self.claims is not None:
            out["claims"] = [c.to_json() for c in self.claims]
        if self.claim_sets is not None:
            out["claim_sets"] = [list(s) for s in self.claim_sets]
        if self.multiple:
            out["multiple"] = True
        if not self.require_cryptographic_holder_binding:
            out["require_cryptographic_holder_binding"] = False
        return out


@dataclass(frozen=True, slots=True)
class CredentialSetQuery:
    options: tuple[tuple[str, ...], ...]
    required: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"options": [list(o) for o in self.options]}
        if not self.required:
            out["required"] = False
        return out


@dataclass(frozen=True, slots=True)
class DCQLQuery:
    credentials: tuple[CredentialQuery, ...]
    credential_sets: tuple[CredentialSetQuery, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"credentials": [c.to_json() for c in self.credentials]}
        if self.credential_sets is not None:
            out["credential_sets"] = [s.to_json() for s in self.credential_sets]
        return out

    def by_id(self, cid: str) -> CredentialQuery:
        for cq in self.credentials:
            if cq.id == cid:
                return cq
        raise DCQLError(f"no credential query {cid!r}")


# --------------------------------------------------------------------------------------------
# parsing


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DCQLError(f"{what} must be an object")
    return value


def _list(value: Any, what: str, *, limit: int, nonempty: bool = True) -> Sequence[Any]:
    if not isinstance(value, list):
        raise DCQLError(f"{what} must be an array")
    if nonempty and not value:
        raise DCQLError(f"{what} must not be empty")
    if len(value) > limit:
        raise DCQLError(f"{what} has too many entries")
    return value


def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise DCQLError(f"{what} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return value


def _path(value: Any) -> Path:
    items = _list(value, "claim path", limit=MAX_PATH)
    out: list[PathElement] = []
    for item in items:
        if (
            item is None
            or isinstance(item, str)
            or (isinstance(item, int) and not isinstance(item, bool) and item >= 0)
        ):
            out.append(item)
        else:
            raise DCQLError("claim path elements are strings, non-negative integers or null")
    return tuple(out)


def _claims_query(raw: Any) -> ClaimsQuery:
    obj = _obj(raw, "claims query")
    cid = None if obj.get("id") is None else _ident(obj["id"], "claim id")
    values = None
    if "values" in obj:
        vals = _list(obj["values"], "values", limit=MAX_VALUES)
        for v in vals:
            if not isinstance(v, str | int | bool):
                raise DCQLError("values entries are strings, integers or booleans")
        values = tuple(vals)
    return ClaimsQuery(_path(obj.get("path")), cid, values)


def _credential_query(raw: Any) -> CredentialQuery:
    obj = _obj(raw, "credential query")
    cid = _ident(obj.get("id"), "credential query id")
    format_ = obj.get("format")
    if not isinstance(format_, str) or not format_:
        raise DCQLError("credential query needs a format")
    meta = _obj(obj.get("meta"), "meta")
    if format_ in SD_JWT_FORMATS or format_ == BBS_FORMAT:
        vct = meta.get("vct_values")
        if vct is not None and not (isinstance(vct, list) and all(isinstance(v, str) for v in vct)):
            raise DCQLError("meta.vct_values must be an array of strings")
    claims = None
    if "claims" in obj:
        claims = tuple(_claims_query(c) for c in _list(obj["claims"], "claims", limit=MAX_CLAIMS))
    claim_sets = None
    if "claim_sets" in obj:
        if claims is None:
            raise DCQLError("claim_sets needs claims")
        ids = {c.id for c in claims}
        if None in ids:
            raise DCQLError("every claim needs an id when claim_sets is present")
        sets = []
        for s in _list(obj["claim_sets"], "claim_sets", limit=MAX_CLAIMS):
            members = tuple(_ident(x, "claim_sets entry") for x in _list(s, "claim set", limit=MAX_CLAIMS))
            unknown = set(members) - ids
            if unknown:
                raise DCQLError("claim_sets names an unknown claim id")
            sets.append(members)
        claim_sets = tuple(sets)
    if claims is not None:
        seen = [c.id for c in claims if c.id is not None]
        if len(seen) != len(set(seen)):
            raise DCQLError("claim ids must be unique within a credential query")
    multiple = obj.get("multiple", False)
    binding = obj.get("require_cryptographic_holder_binding", True)
    if not isinstance(multiple, bool) or not isinstance(binding, bool):
        raise DCQLError("multiple and require_cryptographic_holder_binding are booleans")
    return CredentialQuery(cid, format_, dict(meta), claims, claim_sets, multiple, binding)


def parse_query(raw: Any) -> DCQLQuery:
    """Validate and parse a DCQL query (a JSON object)."""
    obj = _obj(raw, "dcql_query")
    creds = tuple(
        _credential_query(c)
        for c in _list(obj.get("credentials"), "credentials", limit=MAX_CREDENTIAL_QUERIES)
    )
    ids = [c.id for c in creds]
    if len(ids) != len(set(ids)):
        raise DCQLError("credential query ids must be unique")
    sets = None
    if "credential_sets" in obj:
        parsed = []
        for s in _list(obj["credential_sets"], "credential_sets", limit=MAX_CREDENTIAL_QUERIES):
            so = _obj(s, "credential set")
            options = tuple(
                tuple(_ident(x, "option entry") for x in _list(o, "option", limit=MAX_CREDENTIAL_QUERIES))
                for o in _list(so.get("options"), "options", limit=MAX_CREDENTIAL_QUERIES)
            )
            if any(x not in ids for o in options for x in o):
                raise DCQLError("credential_sets names an unknown credential query")
            required = so.get("required", True)
            if not isinstance(required, bool):
                raise DCQLError("credential set required must be a boolean")
            parsed.append(CredentialSetQuery(options, required))
        sets = tuple(parsed)
    return DCQLQuery(creds, sets)


# --------------------------------------------------------------------------------------------
# matching


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """What matching needs to know about one credential: format, type and its (full) claims."""

    format: str
    vct: str | None
    claims: Mapping[str, Any]
    ref: Any = None  # the caller's handle (wallet credential id, parsed SD-JWT, ...)
    holder_binding: bool = True


@dataclass(frozen=True, slots=True)
class ClaimMatch:
    query: ClaimsQuery
    selected: tuple[tuple[Path, Any], ...]  # concrete paths and their values


@dataclass(frozen=True, slots=True)
class CredentialMatch:
    query_id: str
    credential: HeldCredential
    claims: tuple[ClaimMatch, ...]

    @property
    def paths(self) -> list[Path]:
        return [p for c in self.claims for p, _ in c.selected]

    def disclosed_values(self) -> dict[str, Any]:
        """Selected claims as a nested object containing only the requested parts."""
        out: dict[str, Any] = {}
        for path, value in ((p, v) for c in self.claims for p, v in c.selected):
            _insert(out, path, value)
        return out


def _insert(tree: dict[str, Any], path: Path, value: Any) -> None:
    node: Any = tree
    for i, key in enumerate(path):
        last = i == len(path) - 1
        nxt = path[i + 1] if not last else None
        if isinstance(node, dict):
            if last:
                node[str(key)] = value
            else:
                node = node.setdefault(str(key), [] if isinstance(nxt, int) else {})
        elif isinstance(node, list) and isinstance(key, int):
            while len(node) <= key:
                node.append(None)
            if last:
                node[key] = value
            else:
                if node[key] is None:
                    node[key] = [] if isinstance(nxt, int) else {}
                node = node[key]


def resolve_path(claims: Any, path: Sequence[PathElement]) -> list[tuple[Path, Any]]:
    """Every (concrete path, value) a claim path selects (OpenID4VP 1.0 section 7)."""
    current: list[tuple[Path, Any]] = [((), claims)]
    for element in path:
        nxt: list[tuple[Path, Any]] = []
        for prefix, node in current:
            if isinstance(element, str):
                if isinstance(node, Mapping) and element in node:
                    nxt.append(((*prefix, element), node[element]))
            elif element is None:
                if isinstance(node, list):
                    nxt.extend(((*prefix, i), v) for i, v in enumerate(node))
            elif isinstance(node, list) and 0 <= element < len(node):
                nxt.append(((*prefix, element), node[element]))
        current = nxt
        if not current:
            break
    return current


def _value_equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _match_claim(claims: Mapping[str, Any], cq: ClaimsQuery) -> ClaimMatch | None:
    selected = resolve_path(claims, cq.path)
    if cq.values is not None:
        wanted = cq.values
        selected = [(p, v) for p, v in selected if any(_value_equal(v, w) for w in wanted)]
    if not selected:
        return None
    return ClaimMatch(cq, tuple(selected))


def _format_ok(query_format: str, held_format: str) -> bool:
    if query_format in SD_JWT_FORMATS:
        return held_format in SD_JWT_FORMATS
    return query_format == held_format


def match_credential(query: CredentialQuery, credential: HeldCredential) -> CredentialMatch | None:
    """Does this credential satisfy the credential query? Which claims would it disclose?"""
    if not _format_ok(query.format, credential.format):
        return None
    if query.format not in SD_JWT_FORMATS and query.format != BBS_FORMAT:
        return None
    vct = query.vct_values
    if vct is not None and credential.vct not in vct:
        return None
    if query.require_cryptographic_holder_binding and not credential.holder_binding:
        return None
    if query.claims is None:
        return CredentialMatch(query.id, credential, ())
    results = {i: _match_claim(credential.claims, c) for i, c in enumerate(query.claims)}
    if query.claim_sets is None:
        if any(r is None for r in results.values()):
            return None
        return CredentialMatch(query.id, credential, tuple(r for r in results.values() if r is not None))
    by_id = {c.id: results[i] for i, c in enumerate(query.claims)}
    for claim_set in query.claim_sets:
        chosen = [by_id[cid] for cid in claim_set]
        if all(m is not None for m in chosen):
            return CredentialMatch(query.id, credential, tuple(m for m in chosen if m is not None))
    return None


@dataclass(frozen=True, slots=True)
class Selection:
    """The credentials chosen for each credential query id (empty if the query cannot be met)."""

    satisfied: bool
    matches: Mapping[str, tuple[CredentialMatch, ...]]

    @property
    def query_ids(self) -> list[str]:
        return list(self.matches)


def evaluate(query: DCQLQuery, credentials: Sequence[HeldCredential]) -> Selection:
    """Pick credentials for a query (wallet side) or check a response (verifier side)."""
    candidates: dict[str, tuple[CredentialMatch, ...]] = {}
    for cq in query.credentials:
        found = [m for m in (match_credential(cq, c) for c in credentials) if m is not None]
        if found:
            candidates[cq.id] = tuple(found) if cq.multiple else (found[0],)
    if query.credential_sets is None:
        if len(candidates) != len(query.credentials):
            return Selection(False, {})
        return Selection(True, {cq.id: candidates[cq.id] for cq in query.credentials})
    chosen: dict[str, tuple[CredentialMatch, ...]] = {}
    for cs in query.credential_sets:
        option = next((o for o in cs.options if all(cid in candidates for cid in o)), None)
        if option is None:
            if cs.required:
                return Selection(False, {})
            continue
        for cid in option:
            chosen[cid] = candidates[cid]
    return Selection(True, chosen)
