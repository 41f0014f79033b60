from __future__ import annotations

import json
from typing import Any

import pytest

from identity import bbs_credentials as bc
from identity import jose

CLAIMS = {"given_name": "Ada", "birthdate": "1950-12-10", "age_over_65": True, "resident_of": "civitas"}
NOW = 1_767_225_600
AUD, NONCE = "https://agency.example", "nonce-1"


def _issue(key: bc.BBSIssuerKey, **extra: Any) -> tuple[bc.IssuedBBS, bc.NymRequest]:
    """A resident credential of CLAIMS issued to a fresh holder request."""
    request = bc.start_request()
    issued = bc.issue(
        CLAIMS, key=key, iss="https://city.example", vct="urn:resident", commitment=request.commitment,
        now_s=NOW, **extra,
    )  # fmt: skip
    return issued, request


@pytest.fixture(scope="module")
def setup() -> tuple[bc.BBSIssuerKey, bc.BBSCredential]:
    key = bc.BBSIssuerKey.from_seed(b"\x01" * 32)
    issued, request = _issue(key)
    # round-trips through JSON, as it travels and is stored
    issued = bc.IssuedBBS.from_json(json.loads(json.dumps(issued.to_json())))
    cred = bc.accept(issued, request)
    return key, bc.BBSCredential.from_json(json.loads(json.dumps(cred.to_json())))


def _verify(key: bc.BBSIssuerKey, text: str, **kw: object) -> bc.VerifiedBBS:
    args: dict[str, object] = {
        "issuer_public_key": key.public_key,
        "expected_audience": AUD,
        "expected_nonce": NONCE,
        "now": NOW + 10,
    }
    args.update(kw)
    return bc.verify_presentation(text, **args)  # type: ignore[arg-type]


def test_selective_disclosure_and_header_binding(setup: tuple[bc.BBSIssuerKey, bc.BBSCredential]) -> None:
    key, cred = setup
    assert cred.claims["given_name"] == "Ada" and cred.header_fields["iat"] == NOW - NOW % 86400
    text = bc.present(cred, ["age_over_65", "resident_of"], audience=AUD, nonce=NONCE)
    v = _verify(key, text)
    assert v.claims == {
        "vct": "urn:resident",
        "iss": "https://city.example",
        "iat": cred.header_fields["iat"],
        "exp": cred.header_fields["exp"],
        "age_over_65": True,
        "resident_of": "civitas",
    }
    assert v.pseudonym is None
    raw = jose.b64u_decode(text).decode()
    assert "Ada" not in raw and "1950" not in raw


def test_presentations_are_unlinkable(setup: tuple[bc.BBSIssuerKey, bc.BBSCredential]) -> None:
    _, cred = setup
    a = json.loads(jose.b64u_decode(bc.present(cred, ["resident_of"], audience=AUD, nonce=NONCE)))
    b = json.loads(jose.b64u_decode(bc.present(cred, ["resident_of"], audience=AUD, nonce=NONCE)))
    pa, pb = jose.b64u_decode(a["proof"]), jose.b64u_decode(b["proof"])
    assert pa != pb and a["nym"] != b["nym"]
    # no 8-byte window of one proof occurs in the other
    windows = {pa[i : i + 8] for i in range(len(pa) - 7)}
    assert not any(pb[i : i + 8] in windows for i in range(len(pb) - 7))


def test_pseudonym_stable_per_context_and_distinct_across(
    setup: tuple[bc.BBSIssuerKey, bc.BBSCredential],
) -> None:
    key, cred = setup
    one = _verify(
        key,
        bc.present(cred, [], audience=AUD, nonce=NONCE, pseudonym_context="ledger"),
        expected_context="ledger",
    )
    two = _verify(
        key,
        bc.present(cred, [], audience=AUD, nonce=NONCE, pseudonym_context="ledger"),
        expected_context="ledger",
    )
    other = _verify(
        key,
        bc.present(cred, [], audience=AUD, nonce=NONCE, pseudonym_context="library"),
        expected_context="library",
    )
    assert one.pseudonym == two.pseudonym and one.pseudonym != other.pseudonym
    with pytest.raises(bc.BBSCredentialError, match="another verifier"):
        _verify(
            key,
            bc.present(cred, [], audience=AUD, nonce=NONCE, pseudonym_context="library"),
            expected_context="ledger",
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expected_audience": "https://evil.example"}, "does not verify"),
        ({"expected_nonce": "replayed"}, "does not verify"),
        ({"issuer_public_key": bc.BBSIssuerKey.from_seed(b"\x02" * 32).public_key}, "does not verify"),
        ({"now": NOW + 400 * 86400}, "expired"),
    ],
)
def test_rejections(
    setup: tuple[bc.BBSIssuerKey, bc.BBSCredential], kwargs: dict[str, object], message: str
) -> None:
    key, cred = setup
    text = bc.present(cred, ["resident_of"], audience=AUD, nonce=NONCE)
    with pytest.raises(bc.BBSCredentialError, match=message):
        _verify(key, text, **kwargs)


def test_tampered_disclosure_rejected(setup: tuple[bc.BBSIssuerKey, bc.BBSCredential]) -> None:
    key, cred = setup
    body = json.loads(jose.b64u_decode(bc.present(cred, ["resident_of"], audience=AUD, nonce=NONCE)))
    body["disclosed"][0][1] = jose.b64u_encode(json.dumps(["resident_of", "elsewhere"]).encode())
    forged = jose.b64u_encode(json.dumps(body).encode())
    with pytest.raises(bc.BBSCredentialError):
        _verify(key, forged)
    body2 = json.loads(jose.b64u_decode(bc.present(cred, ["resident_of"], audience=AUD, nonce=NONCE)))
    body2["disclosed"][0][0] = 0  # claim name at index 0 differs
    with pytest.raises(bc.BBSCredentialError, match="claim name"):
        _verify(key, jose.b64u_encode(json.dumps(body2).encode()))
    for junk in ("", "x", jose.b64u_encode(b"[]"), jose.b64u_encode(b'{"v":2}')):
        with pytest.raises(bc.BBSCredentialError):
            _verify(key, junk)


def test_issuer_key_did_and_wrong_commitment() -> None:
    key = bc.BBSIssuerKey.from_seed(b"\x03" * 32)
    assert key.did.startswith("did:key:zUC7")
    assert bc.public_key_from_entry(key.public_entry()) == key.public_key
    with pytest.raises(bc.BBSCredentialError):
        bc.issue(CLAIMS, key=key, iss="i", vct="v", commitment=b"\x00" * 10)
    other = bc.start_request()
    issued = bc.issue(CLAIMS, key=key, iss="i", vct="v", commitment=bc.start_request().commitment)
    with pytest.raises(bc.BBSCredentialError, match="does not verify"):
        bc.accept(issued, other)


STATUS = {"status_list": {"idx": 4711, "uri": "https://city.example/identity/status-lists/1"}}


def test_status_reference_is_signed_and_disclosed_only_on_request() -> None:
    key = bc.BBSIssuerKey.from_seed(b"\x04" * 32)
    cred = bc.accept(*_issue(key, status=STATUS))
    assert cred.status == STATUS and "status" in cred.names
    plain = _verify(key, bc.present(cred, ["resident_of"], audience=AUD, nonce=NONCE))
    assert "status" not in plain.claims and plain.status is None
    shown = _verify(key, bc.present(cred, ["resident_of", "status"], audience=AUD, nonce=NONCE))
    assert shown.status == STATUS
    # a forged reference (another index) breaks the proof: the reference is a signed message
    body = json.loads(jose.b64u_decode(bc.present(cred, ["status"], audience=AUD, nonce=NONCE)))
    index, _ = body["disclosed"][0]
    forged = {"status_list": {**STATUS["status_list"], "idx": 1}}
    body["disclosed"][0][1] = jose.b64u_encode(json.dumps(["status", forged], separators=(",", ":")).encode())
    with pytest.raises(bc.BBSCredentialError, match="does not verify"):
        _verify(key, jose.b64u_encode(json.dumps(body).encode()))
    assert cred.names[index] == "status"


def test_status_reference_must_be_well_formed() -> None:
    key = bc.BBSIssuerKey.from_seed(b"\x04" * 32)
    commitment = bc.start_request().commitment
    with pytest.raises(bc.BBSCredentialError, match="status reference"):
        bc.issue(
            CLAIMS, key=key, iss="i", vct="v", commitment=commitment, status={"status_list": {"idx": -1}}
        )
    with pytest.raises(bc.BBSCredentialError, match="status="):
        bc.issue({**CLAIMS, "status": STATUS}, key=key, iss="i", vct="v", commitment=commitment)


# -- structural refusals, each with its reason (checked before the proof) ------------------------


def _body(cred: bc.BBSCredential) -> dict[str, Any]:
    return dict(json.loads(jose.b64u_decode(bc.present(cred, ["resident_of"], audience=AUD, nonce=NONCE))))


def _pack(obj: Any) -> str:
    return jose.b64u_encode(json.dumps(obj).encode())


def _with_header(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    header = {**json.loads(jose.b64u_decode(body["header"])), **changes}
    return {**body, "header": _pack(header)}


def _message(name: str, value: Any) -> str:
    return jose.b64u_encode(json.dumps([name, value]).encode())


def _malformed(body: dict[str, Any]) -> list[tuple[Any, str]]:
    n = body["n"]
    index = body["disclosed"][0][0]
    return [
        (b"not text", "presentation too large or not a string"),
        ("A" * (bc.MAX_PRESENTATION_CHARS + 1), "presentation too large or not a string"),
        ("!!", "presentation is not base64url"),
        (jose.b64u_encode(b"{oops"), "presentation is not JSON"),
        (_pack({**body, "header": 7}), "header must be a base64url string"),
        (_pack({**body, "header": jose.b64u_encode(b"{oops")}), "header is not JSON"),
        (_pack(_with_header(body, typ="other")), "not a Civitas BBS credential header"),
        (_pack({**body, "n": n + 1}), "header claims do not match the message count"),
        (_pack(_with_header(body, claims="all")), "header claims do not match the message count"),
        (_pack(_with_header(body, exp=None)), "header validity missing"),
        (_pack(_with_header(body, iat=NOW + 10 + bc.DAY_S + 1)), "credential issued in the future"),
        (_pack({**body, "ctx": ""}), "missing pseudonym context"),
        (_pack({**body, "ctx": "c" * 201}), "missing pseudonym context"),
        (_pack({**body, "ctx": "\ud800"}), "missing pseudonym context"),
        (_pack({**body, "disclosed": {"0": "x"}}), "disclosed must be a list"),
        (_pack({**body, "disclosed": [[index]]}), r"disclosed entries are \[index, message\]"),
        (_pack({**body, "disclosed": [["0", _message("resident_of", "x")]]}), r"entries are \[index"),
        (_pack({**body, "disclosed": [[n, _message("resident_of", "x")]]}), "increasing and in range"),
        (_pack({**body, "disclosed": [[-1, _message("resident_of", "x")]]}), "increasing and in range"),
        (_pack({**body, "disclosed": [body["disclosed"][0]] * 2}), "increasing and in range"),
        (_pack({**body, "disclosed": [[index, _pack("just a name")]]}), r"not a \[name, value\] pair"),
        (_pack({**body, "disclosed": [[index, jose.b64u_encode(b"\xff")]]}), r"not a \[name, value\] pair"),
    ]


def test_malformed_presentations_refused_with_their_reason(
    setup: tuple[bc.BBSIssuerKey, bc.BBSCredential],
) -> None:
    key, cred = setup
    body = _body(cred)
    assert _verify(key, _pack(body)).claims["resident_of"] == "civitas"  # the unmodified body verifies
    for text, message in _malformed(body):
        with pytest.raises(bc.BBSCredentialError, match=message):
            _verify(key, text)


def test_a_header_at_the_day_of_grace_passes_its_checks(
    setup: tuple[bc.BBSIssuerKey, bc.BBSCredential],
) -> None:
    """iat up to a day ahead is not refused as future-dated (the proof, over the real header, then fails)."""
    key, cred = setup
    body = _with_header(_body(cred), iat=NOW + 10 + bc.DAY_S)
    with pytest.raises(bc.BBSCredentialError, match="does not verify"):
        _verify(key, _pack(body))
