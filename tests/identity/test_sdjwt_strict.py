"""RFC 9901 section 7 rules, one negative case each, plus key binding policy and freshness."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from identity import jose, sdjwt
from identity.sdjwt import SD, SDJWTError

ISSUER = jose.generate_ed25519()
ISSUER_PUB = jose.public_jwk(ISSUER)
HOLDER = jose.generate_ed25519()
NOW = 1_750_000_000
AUD = "https://agency.example"
NONCE = "n-0123456789abcdef"
VCT = "https://city.example/credentials/resident"


def _b64(obj: Any) -> str:
    return jose.b64u_encode(json.dumps(obj).encode())


def _digest(disclosure: str) -> str:
    return jose.b64u_encode(hashlib.sha256(disclosure.encode()).digest())


def _signed(
    payload: dict[str, Any], header: dict[str, Any] | None = None, key: dict[str, Any] = ISSUER
) -> str:
    return jose.sign_compact(
        {"typ": "dc+sd-jwt"} if header is None else header, json.dumps(payload).encode(), key
    )


def _kb(body: str, *, key: dict[str, Any] = HOLDER, **overrides: Any) -> str:
    payload = {
        "iat": NOW,
        "aud": AUD,
        "nonce": NONCE,
        "sd_hash": jose.b64u_encode(hashlib.sha256(body.encode()).digest()),
    }
    header = {"typ": overrides.pop("typ", "kb+jwt")}
    payload.update(overrides)
    return jose.sign_compact(header, json.dumps(payload).encode(), key)


def _verify(presentation: str, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "issuer_jwk": ISSUER_PUB,
        "expected_audience": AUD,
        "expected_nonce": NONCE,
        "now": NOW,
    }
    args.update(kwargs)
    return sdjwt.verify_presentation(presentation, **args)


def _base(**extra: Any) -> dict[str, Any]:
    return {
        "vct": VCT,
        "iss": "https://city.example",
        "iat": NOW - 10,
        "cnf": {"jwk": jose.public_jwk(HOLDER)},
        **extra,
    }


def _with_kb(jwt: str, disclosures: list[str]) -> str:
    body = "~".join([jwt, *disclosures, ""])
    return body + _kb(body)


def _check(presentation: str, refusal: str | None) -> dict[str, Any]:
    """Verify expecting acceptance (``refusal`` None: the claims) or a refusal matching ``refusal``."""
    if refusal is None:
        return _verify(presentation)
    with pytest.raises(SDJWTError, match=refusal):
        _verify(presentation)
    return {}


def _credential(**claims: Any) -> str:
    return sdjwt.issue(
        {"vct": VCT, "iss": "https://city.example", "iat": NOW - 10, **{SD(k): v for k, v in claims.items()}},
        issuer_key=ISSUER,
        holder_jwk=HOLDER,
    )


def _present(cred: str, paths: list[tuple[Any, ...]] | None = None, **kw: Any) -> str:
    held = sdjwt.parse(cred)
    if paths is None:
        paths = [d.path for d in held.disclosures]
    kw.setdefault("iat", NOW)
    return sdjwt.present(held, disclose=paths, holder_key=HOLDER, audience=AUD, nonce=NONCE, **kw)


def test_valid_presentation_accepted() -> None:
    cred = _credential(given_name="Ada", age_over_18=True)
    claims = _verify(_present(cred, [("age_over_18",)]))
    assert claims["age_over_18"] is True
    assert "given_name" not in claims
    assert "_sd" not in claims and "_sd_alg" not in claims


# -- disclosures ---------------------------------------------------------------------------------


def test_disclosure_not_referenced_rejected() -> None:
    a = _credential(given_name="Ada")
    stray = sdjwt.parse(_credential(family_name="Lovelace")).disclosures[0].raw
    jwt, *disclosures, _ = a.split("~")
    with pytest.raises(SDJWTError, match="not referenced"):
        _verify(_with_kb(jwt, [*disclosures, stray]))


def test_same_disclosure_twice_rejected() -> None:
    jwt, disclosure, _ = _credential(given_name="Ada").split("~")
    with pytest.raises(SDJWTError, match="twice"):
        _verify(_with_kb(jwt, [disclosure, disclosure]))


def test_duplicate_digest_in_payload_rejected() -> None:
    d = _b64(["salt", "given_name", "Ada"])
    jwt = _signed(_base(_sd=[_digest(d), _digest(d)], _sd_alg="sha-256"))
    with pytest.raises(SDJWTError, match="more than once"):
        _verify(_with_kb(jwt, [d]))


def test_duplicate_digest_across_objects_rejected() -> None:
    d = _b64(["salt", "x", 1])
    jwt = _signed(_base(_sd=[_digest(d)], nested={"_sd": [_digest(d)]}))
    with pytest.raises(SDJWTError, match="more than once"):
        _verify(_with_kb(jwt, [d]))


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_reserved_claim_name_in_disclosure_rejected(name: str) -> None:
    d = _b64(["salt", name, "x"])
    jwt = _signed(_base(_sd=[_digest(d)]))
    with pytest.raises(SDJWTError, match="reserved"):
        _verify(_with_kb(jwt, [d]))


def test_disclosed_claim_overwriting_plain_claim_rejected() -> None:
    d = _b64(["salt", "iss", "https://evil.example"])
    jwt = _signed(_base(_sd=[_digest(d)]))
    with pytest.raises(SDJWTError, match="already exists"):
        _verify(_with_kb(jwt, [d]))


def test_array_digest_pointing_to_property_disclosure_rejected() -> None:
    d = _b64(["salt", "name", "x"])
    jwt = _signed(_base(items=[{"...": _digest(d)}]))
    with pytest.raises(SDJWTError, match="array element digest"):
        _verify(_with_kb(jwt, [d]))


def test_object_digest_pointing_to_array_disclosure_rejected() -> None:
    d = _b64(["salt", "x"])
    jwt = _signed(_base(_sd=[_digest(d)]))
    with pytest.raises(SDJWTError, match="array-element disclosure"):
        _verify(_with_kb(jwt, [d]))


@pytest.mark.parametrize(
    "disclosure",
    [
        "not*base64",
        "YQ==",  # padded
        _b64({"salt": "s"}),
        _b64(["s", "a", "b", "c"]),
        _b64(["s"]),
        _b64([1, "n", "v"]),
        _b64(["s", 2, "v"]),
        jose.b64u_encode(b"[not json"),
    ],
)
def test_malformed_disclosure_rejected(disclosure: str) -> None:
    jwt = _signed(_base(_sd=[_digest(disclosure)]))
    with pytest.raises(SDJWTError):
        _verify(_with_kb(jwt, [disclosure]))


def test_sd_not_an_array_rejected() -> None:
    jwt = _signed(_base(_sd="abc"))
    with pytest.raises(SDJWTError, match="_sd must be an array"):
        _verify(_with_kb(jwt, []))


def test_unsupported_sd_alg_rejected() -> None:
    jwt = _signed(_base(_sd_alg="sha-512"))
    with pytest.raises(SDJWTError, match="_sd_alg"):
        _verify(_with_kb(jwt, []))


def test_recursive_disclosures_accepted() -> None:
    inner = _b64(["s1", "street", "Main 1"])
    outer = _b64(["s2", "address", {"_sd": [_digest(inner)], "city": "X"}])
    jwt = _signed(_base(_sd=[_digest(outer)]))
    assert _verify(_with_kb(jwt, [outer, inner]))["address"] == {"street": "Main 1", "city": "X"}
    # the child without its parent is an unreferenced disclosure
    with pytest.raises(SDJWTError, match="not referenced"):
        _verify(_with_kb(jwt, [inner]))


def _nested(depth: int, container: str) -> Any:
    """A value whose innermost container sits ``depth`` levels below the claim holding it."""
    value: Any = {"leaf": 1} if container == "object" else [1]
    for _ in range(depth - 1):
        value = {"x": value} if container == "object" else [value]
    return value


@pytest.mark.parametrize("container", ["object", "array"])
def test_nesting_limit_at_the_edge_in_the_payload_and_in_disclosures(container: str) -> None:
    limit = sdjwt.MAX_DEPTH  # the payload is level 0
    for extra, refusal in ((0, None), (1, "nests too deeply")):
        value = _nested(limit + extra, container)  # innermost container at level limit + extra
        claims = _check(_with_kb(_signed(_base(deep=value)), []), refusal)
        assert refusal or claims["deep"] == value
        # a disclosed property counts from the object whose digest it replaces ...
        d = _b64(["salt", "deep", value])
        claims = _check(_with_kb(_signed(_base(_sd=[_digest(d)])), [d]), refusal)
        assert refusal or claims["deep"] == value
        # ... and a disclosed array element from its array (level 1 here)
        element = _nested(limit - 1 + extra, container)
        e = _b64(["salt", element])
        claims = _check(_with_kb(_signed(_base(items=[{"...": _digest(e)}])), [e]), refusal)
        assert refusal or claims["items"] == [element]


# -- issuer-signed JWT ---------------------------------------------------------------------------


def test_alg_none_rejected() -> None:
    header = jose.b64u_encode(json.dumps({"alg": "none", "typ": "dc+sd-jwt"}).encode())
    jwt = f"{header}.{_b64(_base())}."
    with pytest.raises(SDJWTError, match="alg"):
        _verify(_with_kb(jwt, []))


def test_hs256_with_public_key_as_secret_rejected() -> None:
    header = jose.b64u_encode(json.dumps({"alg": "HS256", "typ": "dc+sd-jwt"}).encode())
    jwt = f"{header}.{_b64(_base())}.AAAA"
    with pytest.raises(SDJWTError, match="alg"):
        _verify(_with_kb(jwt, []))


def test_tampered_payload_rejected() -> None:
    jwt = _signed(_base())
    h, _, s = jwt.split(".")
    forged = f"{h}.{_b64(_base(admin=True))}.{s}"
    with pytest.raises(SDJWTError, match="signature"):
        _verify(_with_kb(forged, []))


def test_wrong_issuer_key_rejected() -> None:
    jwt = _signed(_base(), key=jose.generate_ed25519())
    with pytest.raises(SDJWTError, match="signature"):
        _verify(_with_kb(jwt, []))


def test_es256_issuer_accepted_and_key_type_enforced() -> None:
    ec = jose.generate_ec_p256()
    jwt = _signed(_base(), key=ec)
    assert _verify(_with_kb(jwt, []), issuer_jwk=jose.public_jwk(ec))["vct"] == VCT
    with pytest.raises(SDJWTError, match="alg"):
        _verify(_with_kb(jwt, []))  # ES256 token against the Ed25519 issuer key


@pytest.mark.parametrize("typ", ["JWT", "example+sd-jwt", None])
def test_wrong_typ_rejected(typ: str | None) -> None:
    header = {"typ": typ} if typ else {}
    jwt = _signed(_base(), header=header)
    with pytest.raises(SDJWTError, match="typ"):
        _verify(_with_kb(jwt, []))


def test_legacy_vc_sd_jwt_typ_accepted() -> None:
    jwt = _signed(_base(), header={"typ": "vc+sd-jwt"})
    assert _verify(_with_kb(jwt, []))["iss"] == "https://city.example"


def test_missing_vct_rejected() -> None:
    base = _base()
    del base["vct"]
    with pytest.raises(SDJWTError, match="vct"):
        _verify(_with_kb(_signed(base), []))


def test_expiry_checked_after_disclosure_processing() -> None:
    exp = _b64(["s", "exp", NOW - 100])
    jwt = _signed(_base(iat=NOW - 1000, _sd=[_digest(exp)]), header={"typ": "example+sd-jwt"})
    args = {
        "accepted_typs": None,
        "issuer_jwk": ISSUER_PUB,
        "expected_audience": AUD,
        "expected_nonce": NONCE,
    }
    with pytest.raises(SDJWTError, match="expired"):
        sdjwt.verify(_with_kb(jwt, [exp]), now=NOW, **args)
    body = "~".join([jwt, exp, ""])
    early = body + _kb(body, iat=NOW - 200)
    assert sdjwt.verify(early, now=NOW - 200, **args).claims["exp"] == NOW - 100


def test_expired_and_not_yet_valid_rejected() -> None:
    with pytest.raises(SDJWTError, match="expired"):
        _verify(_with_kb(_signed(_base(exp=NOW - 100)), []))
    with pytest.raises(SDJWTError, match="not yet valid"):
        _verify(_with_kb(_signed(_base(nbf=NOW + 3600)), []))
    with pytest.raises(SDJWTError, match="exp must be a number"):
        _verify(_with_kb(_signed(_base(exp="tomorrow")), []))


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "a.b.c", "a.b.c~", "a.b~x~", "~~", "x" * (1 << 21), "é.b.c~"],
)
def test_malformed_serialization_rejected(bad: str) -> None:
    with pytest.raises(SDJWTError):
        _verify(bad)


def test_disclosure_count_limit_at_the_edge() -> None:
    def presentation(count: int) -> str:
        disclosures = [_b64([f"s{i}", f"c{i}", i]) for i in range(count)]
        return _with_kb(_signed(_base(_sd=[_digest(d) for d in disclosures])), disclosures)

    claims = _verify(presentation(sdjwt.MAX_DISCLOSURES))
    assert claims[f"c{sdjwt.MAX_DISCLOSURES - 1}"] == sdjwt.MAX_DISCLOSURES - 1
    with pytest.raises(SDJWTError, match="too many disclosures"):
        _verify(presentation(sdjwt.MAX_DISCLOSURES + 1))


def test_size_limit_at_the_edge() -> None:
    """A presentation of exactly MAX_PRESENTATION_CHARS verifies; a slightly longer one is refused."""
    limit = sdjwt.MAX_PRESENTATION_CHARS

    def presentation(filler: int, padding: int) -> str:
        d = _b64(["salt", "note", "x" * padding])
        return _with_kb(_signed(_base(_sd=[_digest(d)], filler="f" * filler)), [d])

    def sizes(filler: int) -> dict[int, str]:
        """Presentations around the limit; base64url skips some lengths, the filler claim shifts them."""
        start = (limit - len(presentation(filler, 0))) * 3 // 4
        return {len(p): p for p in (presentation(filler, n) for n in range(start - 3, start + 4))}

    around = next(found for found in map(sizes, range(4)) if limit in found)
    assert len(_verify(around[limit])["note"]) > 700_000
    over = min(n for n in around if n > limit)
    with pytest.raises(SDJWTError, match="too large"):
        _verify(around[over])


def test_empty_disclosure_rejected() -> None:
    jwt = _signed(_base())
    with pytest.raises(SDJWTError, match="empty disclosure"):
        _verify(_with_kb(jwt, [""]))


# -- key binding ---------------------------------------------------------------------------------


def test_key_binding_required_by_policy_not_presence() -> None:
    cred = _credential(given_name="Ada")
    bare = sdjwt.present(cred, disclose=[("given_name",)])
    with pytest.raises(SDJWTError, match="no Key Binding JWT"):
        _verify(bare)
    assert _verify(bare, require_key_binding=False)["given_name"] == "Ada"
    # A KB-JWT that is present is checked even when policy does not require one.
    stale = _present(cred, iat=NOW - 10_000)
    with pytest.raises(SDJWTError, match="too old"):
        _verify(stale, require_key_binding=False)


def test_key_binding_without_cnf_rejected() -> None:
    base = _base()
    del base["cnf"]
    with pytest.raises(SDJWTError, match="cnf"):
        _verify(_with_kb(_signed(base), []))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nonce": "other"}, "nonce"),
        ({"aud": "https://other.example"}, "audience"),
        ({"aud": [AUD]}, "audience"),
        ({"iat": NOW - 301}, "too old"),
        ({"iat": NOW + 3600}, "future"),
        ({"iat": "now"}, "numeric iat"),
        ({"sd_hash": "AAAA"}, "sd_hash"),
        ({"typ": "JWT"}, "typ"),
    ],
)
def test_kb_jwt_claims_enforced(overrides: dict[str, Any], message: str) -> None:
    jwt = _signed(_base())
    body = jwt + "~"
    with pytest.raises(SDJWTError, match=message):
        _verify(body + _kb(body, **overrides))


def test_time_windows_at_their_edges() -> None:
    """KB-JWT age up to KB_MAX_AGE_S, and CLOCK_SKEW_S of skew on every time check, both inclusive."""
    age, skew = sdjwt.KB_MAX_AGE_S, sdjwt.CLOCK_SKEW_S
    body = _signed(_base()) + "~"
    for iat, refusal in (
        (NOW - age, None),
        (NOW - age - 1, "too old"),
        (NOW + skew, None),
        (NOW + skew + 1, "future"),
    ):
        verified = _check(body + _kb(body, iat=iat), refusal)
        assert refusal or verified["iss"] == "https://city.example"
    for claims, refusal in (
        ({"exp": NOW - skew + 1}, None),
        ({"exp": NOW - skew}, "expired"),
        ({"nbf": NOW + skew}, None),
        ({"nbf": NOW + skew + 1}, "not yet valid"),
        ({"iat": NOW + skew}, None),
        ({"iat": NOW + skew + 1}, "issued in the future"),
    ):
        verified = _check(_with_kb(_signed(_base(**claims)), []), refusal)
        assert refusal or verified["iss"] == "https://city.example"


def test_kb_jwt_missing_claims_rejected() -> None:
    jwt = _signed(_base())
    body = jwt + "~"
    for claim in ("nonce", "aud", "sd_hash"):
        payload = {
            "iat": NOW,
            "aud": AUD,
            "nonce": NONCE,
            "sd_hash": jose.b64u_encode(hashlib.sha256(body.encode()).digest()),
        }
        del payload[claim]
        kb = jose.sign_compact({"typ": "kb+jwt"}, json.dumps(payload).encode(), HOLDER)
        with pytest.raises(SDJWTError):
            _verify(body + kb)


def test_kb_jwt_signed_by_another_key_rejected() -> None:
    jwt = _signed(_base())
    body = jwt + "~"
    with pytest.raises(SDJWTError, match="signature"):
        _verify(body + _kb(body, key=jose.generate_ed25519()))


def test_kb_jwt_alg_none_rejected() -> None:
    jwt = _signed(_base())
    body = jwt + "~"
    head = jose.b64u_encode(b'{"alg":"none","typ":"kb+jwt"}')
    payload = _b64({"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": "x"})
    with pytest.raises(SDJWTError, match="alg"):
        _verify(f"{body}{head}.{payload}.")


def test_dropping_or_adding_disclosure_after_binding_breaks_sd_hash() -> None:
    cred = _credential(given_name="Ada", family_name="Lovelace")
    full = _present(cred)
    jwt, d1, d2, kb = full.split("~")
    with pytest.raises(SDJWTError, match="sd_hash"):
        _verify(f"{jwt}~{d1}~{kb}")
    with pytest.raises(SDJWTError, match="sd_hash"):
        _verify(f"{jwt}~{d2}~{d1}~{kb}")


def test_error_messages_carry_no_disclosure_content() -> None:
    secret = "SECRET-BIRTHDATE-1970"
    d = _b64(["salt", "_sd", secret])
    jwt = _signed(_base(_sd=[_digest(d)]))
    with pytest.raises(SDJWTError) as info:
        _verify(_with_kb(jwt, [d]))
    assert secret not in str(info.value)


# -- issuance guards -----------------------------------------------------------------------------


def test_issue_refuses_reserved_and_vc_registered_claims() -> None:
    with pytest.raises(SDJWTError, match="reserved"):
        sdjwt.issue({"vct": VCT, "_sd": []}, issuer_key=ISSUER)
    with pytest.raises(SDJWTError, match="must not be selectively disclosable"):
        sdjwt.issue({"vct": VCT, SD("exp"): 1}, issuer_key=ISSUER)
    with pytest.raises(SDJWTError, match="vct"):
        sdjwt.issue({"x": 1}, issuer_key=ISSUER)
    with pytest.raises(SDJWTError, match="private"):
        sdjwt.issue({"vct": VCT}, issuer_key=ISSUER_PUB)


def _deep(levels: int) -> Any:
    """Objects nested ``levels`` deep: as a claim value, its innermost object is at that level."""
    node: Any = "leaf"
    for _ in range(levels):
        node = {"n": node}
    return node


@pytest.mark.parametrize(
    ("claims", "options", "message"),
    [
        ({"vct": VCT, "a": _deep(sdjwt.MAX_DEPTH + 1)}, {}, "nest too deeply"),
        ({"vct": VCT, "a": SD(1)}, {}, "SD marks a dict key or a list element"),
        ({"vct": VCT, 7: "x"}, {}, "claim names must be strings"),
        ({"vct": VCT, "a": {1, 2}}, {}, "type set is not JSON"),
        ({"vct": VCT}, {"decoys": 17}, "decoys"),
        ({"vct": VCT}, {"decoys": -1}, "decoys"),
        ({"vct": VCT, "cnf": {"jwk": {}}}, {"holder_jwk": "holder"}, "either a cnf claim or holder_jwk"),
        ({"vct": VCT}, {"holder_jwk": {"kty": "oct", "k": "AAAA"}}, "holder key"),
    ],
)
def test_issue_refuses_malformed_claims_and_options(
    claims: dict[Any, Any], options: dict[str, Any], message: str
) -> None:
    if options.get("holder_jwk") == "holder":
        options = {**options, "holder_jwk": jose.public_jwk(HOLDER)}
    with pytest.raises(SDJWTError, match=message):
        sdjwt.issue(claims, issuer_key=ISSUER, **options)


def test_issue_accepts_what_the_verifier_accepts_at_the_edges() -> None:
    """Containers 32 levels below the payload, a name given once either way, sixteen decoys."""
    deepest = _deep(sdjwt.MAX_DEPTH)  # its innermost object is at level 32 (the payload is 0)
    cred = sdjwt.issue(
        {"vct": VCT, "iss": "https://city.example", "a": deepest, SD("b"): deepest, "c": [SD(1)]},
        issuer_key=ISSUER,
        holder_jwk=HOLDER,
        decoys=16,
    )
    held = sdjwt.parse(cred)
    assert len(held.payload["_sd"]) == 17
    claims = _verify(_present(cred))
    assert claims["a"] == claims["b"] == deepest and claims["c"] == [1]
    for twice in ({"vct": VCT, SD("a"): 1, "a": 2}, {"vct": VCT, "a": 2, SD("a"): 1}):
        with pytest.raises(SDJWTError, match="claim 'a' given twice"):
            sdjwt.issue(twice, issuer_key=ISSUER)


def test_present_needs_an_audience_and_a_nonce_for_key_binding() -> None:
    held = sdjwt.parse(_credential(age_over_18=True))
    for audience, nonce in ((None, NONCE), (AUD, None)):
        with pytest.raises(SDJWTError, match="needs an audience and a nonce"):
            sdjwt.present(held, disclose=[], holder_key=HOLDER, audience=audience, nonce=nonce)


def test_decoys_hide_claim_count() -> None:
    cred = sdjwt.issue({"vct": VCT, SD("a"): 1}, issuer_key=ISSUER, decoys=3)
    held = sdjwt.parse(cred)
    assert len(held.payload["_sd"]) == 4
    assert len(held.disclosures) == 1
    assert held.payload["_sd"] == sorted(held.payload["_sd"])


# -- holder key (cnf.jwk) ------------------------------------------------------------------------


def _holder_variants() -> list[tuple[dict[str, Any], str]]:
    public = jose.public_jwk(HOLDER)
    x = jose.b64u_decode(public["x"])
    return [
        (dict(HOLDER), "public key"),  # the private JWK itself
        (dict(public, key_ops=["encrypt"]), "malformed"),  # joserfc: key not for verifying
        (dict(public, use="enc"), "malformed"),
        (dict(public, x=jose.b64u_encode(x[:31])), "holder key"),
        (dict(public, crv="Ed448"), "holder key"),
        ({"kty": "oct", "k": public["x"]}, "holder key"),
    ]


@pytest.mark.parametrize(("jwk", "message"), _holder_variants())
def test_unusable_holder_key_rejected(jwk: dict[str, Any], message: str) -> None:
    jwt = _signed(_base(cnf={"jwk": jwk}))
    body = jwt + "~"
    with pytest.raises(SDJWTError, match=message):
        _verify(body + _kb(body))


def test_every_presentation_imports_its_own_holder_key() -> None:
    """Two credentials whose holder keys differ: a KB-JWT only verifies with its own cnf.jwk."""
    other = jose.generate_ed25519()
    mine = _signed(_base())
    theirs = _signed(_base(cnf={"jwk": jose.public_jwk(other)}))
    assert _verify(_with_kb(mine, []))["cnf"]["jwk"] == jose.public_jwk(HOLDER)
    body = theirs + "~"
    with pytest.raises(SDJWTError, match="signature"):
        _verify(body + _kb(body))  # signed with HOLDER, bound to `other`
    assert _verify(body + _kb(body, key=other))["cnf"]["jwk"] == jose.public_jwk(other)


# -- verify_presentation is verify() with its defaults -------------------------------------------


def test_verify_presentation_matches_verify() -> None:
    cred = _credential(given_name="Ada", age_over_18=True)
    presentation = _present(cred, [("age_over_18",)])
    full = sdjwt.verify(
        presentation, issuer_jwk=ISSUER_PUB, expected_audience=AUD, expected_nonce=NONCE, now=NOW
    )
    assert _verify(presentation) == full.claims
    assert full.disclosed == ("age_over_18",)
    plain = _signed(_base(), header={"typ": "example+sd-jwt"})
    for check in (
        lambda: _verify(_with_kb(plain, [])),
        lambda: sdjwt.verify(
            _with_kb(plain, []), issuer_jwk=ISSUER_PUB, expected_audience=AUD, expected_nonce=NONCE, now=NOW
        ),
    ):
        with pytest.raises(SDJWTError, match="typ"):
            check()


def test_peek_issuer_jwt_reads_without_verifying() -> None:
    """peek_issuer_jwt names the issuer and key of a presentation; it checks no signature."""
    presentation = _present(_credential(age_over_18=True), [("age_over_18",)])
    header, payload = sdjwt.peek_issuer_jwt(presentation)
    assert header["typ"] == "dc+sd-jwt" and payload["iss"] == "https://city.example"
    head, body, sig = presentation.split("~", 1)[0].split(".")
    forged = ".".join([head, body, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")])
    tampered = presentation.replace(presentation.split("~", 1)[0], forged, 1)
    assert sdjwt.peek_issuer_jwt(tampered)[1]["iss"] == "https://city.example"
    with pytest.raises(SDJWTError):
        _verify(tampered)
    with pytest.raises(SDJWTError):
        sdjwt.peek_issuer_jwt("no separator")


# -- refusals of malformed members, each with its reason -----------------------------------------


def _kb_payload(body: str, payload: Any) -> str:
    return body + jose.sign_compact({"typ": "kb+jwt"}, json.dumps(payload).encode(), HOLDER)


def _bad_presentations() -> list[tuple[str, dict[str, Any], str]]:
    good = _signed(_base())
    array_payload = jose.sign_compact({"typ": "dc+sd-jwt"}, json.dumps([_base()]).encode(), ISSUER)
    return [
        (good + "~a.b", {}, "Key Binding JWT is not a compact JWS"),
        (_with_kb(_signed(_base(_sd=[7])), []), {}, "digest must be a string"),
        (_with_kb(array_payload, []), {}, "JWT payload must be a JSON object"),
        (_with_kb(_signed(_base(nbf="soon")), []), {}, "nbf must be a number"),
        (_with_kb(_signed(_base(iat="then")), []), {}, "iat must be a number"),
        (
            _kb_payload(good + "~", ["not", "an", "object"]),
            {},
            "Key Binding JWT payload must be a JSON object",
        ),
        (_with_kb(good, []), {"issuer_jwk": {"kty": "oct", "k": "AAAA"}}, "issuer key"),
        (_with_kb(good, []), {"issuer_jwk": [ISSUER_PUB]}, "issuer key"),
    ]


@pytest.mark.parametrize(("presentation", "options", "message"), _bad_presentations())
def test_malformed_members_refused_with_their_reason(
    presentation: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(SDJWTError, match=message):
        _verify(presentation, **options)


def test_only_strings_are_presentations() -> None:
    with pytest.raises(SDJWTError, match="must be a string"):
        _verify(_with_kb(_signed(_base()), []).encode())  # type: ignore[arg-type]


def test_expected_issuer_enforced_when_given() -> None:
    presentation = _with_kb(_signed(_base()), [])
    args: dict[str, Any] = {
        "issuer_jwk": ISSUER_PUB,
        "expected_audience": AUD,
        "expected_nonce": NONCE,
        "now": NOW,
    }
    assert sdjwt.verify(presentation, expected_issuer="https://city.example", **args).claims["vct"] == VCT
    with pytest.raises(SDJWTError, match="unexpected issuer"):
        sdjwt.verify(presentation, expected_issuer="https://other.example", **args)


@pytest.mark.parametrize(
    ("jwt", "message"),
    [
        ("!!!." + _b64({"iss": "x"}) + ".sig", "JWT header is not base64url"),
        (jose.b64u_encode(b"{not json") + "." + _b64({"iss": "x"}) + ".sig", "JWT header is not valid JSON"),
        (
            _b64({"alg": "EdDSA"}) + "." + jose.b64u_encode(b"\xff\xfe") + ".sig",
            "JWT payload is not valid JSON",
        ),
        (_b64(["alg"]) + "." + _b64({"iss": "x"}) + ".sig", "must be JSON objects"),
    ],
)
def test_peek_issuer_jwt_refuses_undecodable_parts(jwt: str, message: str) -> None:
    with pytest.raises(SDJWTError, match=message):
        sdjwt.peek_issuer_jwt(jwt + "~")
