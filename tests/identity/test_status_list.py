from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import jose, status_list
from identity.status_list import StatusChecker, StatusList, StatusListError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sd-jwt" / "token-status-list"


def _json_vector(name: str) -> tuple[list[int] | None, dict[str, object]]:
    text = (VECTORS / name).read_text()
    byte_array = None
    m = re.search(r"byte_array = \[([^\]]*)\]", text)
    if m:
        byte_array = [int(x, 16) for x in m.group(1).split(",")]
    body = text[text.index("{") :]
    obj = json.loads("".join(body.split()))
    return byte_array, obj


JSON_VECTORS = sorted(p.name for p in VECTORS.glob("status_list_encoding*_json.md"))


@pytest.mark.parametrize("name", JSON_VECTORS)
def test_draft_json_encodings(name: str) -> None:
    byte_array, obj = _json_vector(name)
    bits, lst = obj["bits"], obj["lst"]
    assert isinstance(bits, int) and isinstance(lst, str)
    raw = status_list.decompress(lst)
    statuses = status_list.decode(lst, bits)
    assert len(statuses) == len(raw) * 8 // bits
    if byte_array is not None:
        assert list(raw) == byte_array
    # Re-encoding gives the same bytes (compressed form may differ by zlib settings).
    assert status_list.decompress(status_list.encode(statuses, bits)) == raw
    assert status_list.decode(status_list.encode(statuses, bits), bits) == statuses


def test_json_vectors_found() -> None:
    assert {"status_list_encoding_json.md", "status_list_encoding8_json.md"} <= set(JSON_VECTORS)
    assert len(JSON_VECTORS) == 6


def test_draft_one_bit_example_statuses() -> None:
    # status[0]=1 status[1]=0 status[2]=0 status[3]=1 status[4]=1 status[5]=1 status[6]=0 status[7]=1
    # status[8]=1 status[9]=1 status[10]=0 status[11]=0 status[12]=0 status[13]=1 status[14]=0 status[15]=1
    expected = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    assert status_list.decode("eNrbuRgAAhcBXQ", 1) == expected
    assert status_list.encode(expected, 1) == "eNrbuRgAAhcBXQ"


def test_draft_two_bit_example_statuses() -> None:
    expected = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    assert status_list.decode("eNo76fITAAPfAgc", 2) == expected
    assert status_list.encode(expected, 2) == "eNo76fITAAPfAgc"


def test_draft_status_list_token_payload() -> None:
    raw = "".join((VECTORS / "status_list_jwt_raw.md").read_text().split())
    header_b64, payload_b64, _ = raw.split(".")
    header = json.loads(jose.b64u_decode(header_b64))
    payload = json.loads(jose.b64u_decode(payload_b64))
    assert header["typ"] == status_list.TOKEN_TYP
    lst = StatusList.from_lst(payload["status_list"]["lst"], payload["status_list"]["bits"])
    assert [lst.get(i) for i in range(16)] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    assert payload["sub"] == "https://example.com/statuslists/1" and payload["ttl"] == 43200


@given(
    st.sampled_from([1, 2, 4, 8]).flatmap(
        lambda b: st.tuples(st.just(b), st.lists(st.integers(0, (1 << b) - 1), max_size=300))
    )
)
def test_round_trip(case: tuple[int, list[int]]) -> None:
    bits, statuses = case
    decoded = status_list.decode(status_list.encode(statuses, bits), bits)
    assert decoded[: len(statuses)] == statuses
    assert all(s == 0 for s in decoded[len(statuses) :])
    assert len(decoded) - len(statuses) < 8 // bits


@given(st.sampled_from([1, 2, 4, 8]), st.data())
def test_status_list_set_get(bits: int, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 200))
    lst = StatusList(size, bits)
    model = [0] * size
    for _ in range(data.draw(st.integers(0, 30))):
        i = data.draw(st.integers(0, size - 1))
        v = data.draw(st.integers(0, (1 << bits) - 1))
        lst.set(i, v)
        model[i] = v
    assert [lst.get(i) for i in range(size)] == model
    again = StatusList.from_lst(lst.to_lst(), bits)
    assert [again.get(i) for i in range(size)] == model


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: status_list.encode([2], 1), "fits"),
        (lambda: status_list.encode([1], 3), "bits"),
        (lambda: status_list.decode("not base64!", 1), "base64url"),
        (lambda: status_list.decode(jose.b64u_encode(b"plain"), 1), "zlib"),
        (lambda: StatusList(8).get(8), "range"),
        (lambda: StatusList(8).set(0, 2), "fit"),
        (lambda: status_list.parse_status_claim({"status_list": {"idx": -1, "uri": "u"}}), "idx"),
        (lambda: status_list.parse_status_claim({"status_list": {"idx": 1}}), "uri"),
        (lambda: status_list.parse_status_claim("x"), "object"),
    ],
)
def test_rejects(call: object, message: str) -> None:
    with pytest.raises(StatusListError, match=message):
        call()  # type: ignore[operator]


def test_decompression_bomb_refused() -> None:
    import zlib

    bomb = jose.b64u_encode(zlib.compress(bytes(status_list.MAX_LIST_BYTES + 1)))
    with pytest.raises(StatusListError, match="too large"):
        status_list.decode(bomb, 1)


KEY = jose.generate_ed25519()
URI = "https://city.example/identity/status-lists/1"


def test_token_sign_verify_and_checks() -> None:
    lst = StatusList(1024)
    lst.set(7, status_list.INVALID)
    token = status_list.make_token(lst, uri=URI, issuer_key=KEY, iat=1000, exp=5000, ttl_s=60, kid="k1")
    parsed = status_list.verify_token(token, issuer_jwk=jose.public_jwk(KEY), expected_uri=URI, now=1500)
    assert parsed.status_list.get(7) == 1 and parsed.status_list.get(8) == 0
    assert parsed.ttl_s == 60 and parsed.exp == 5000
    with pytest.raises(StatusListError, match="sub"):
        status_list.verify_token(token, issuer_jwk=jose.public_jwk(KEY), expected_uri=URI + "x", now=1500)
    with pytest.raises(StatusListError, match="expired"):
        status_list.verify_token(token, issuer_jwk=jose.public_jwk(KEY), expected_uri=URI, now=6000)
    with pytest.raises(StatusListError, match="signature"):
        status_list.verify_token(token, issuer_jwk=jose.public_jwk(jose.generate_ed25519()), expected_uri=URI)
    wrong_typ = jose.sign_compact({"typ": "JWT"}, json.dumps({"sub": URI, "iat": 1}).encode(), KEY)
    with pytest.raises(StatusListError, match="typ"):
        status_list.verify_token(wrong_typ, issuer_jwk=jose.public_jwk(KEY), expected_uri=URI)


def test_checker_caches_for_ttl() -> None:
    lst = StatusList(64, bits=2)
    now = [1000]
    served: list[str] = []

    def fetch(uri: str) -> str:
        served.append(uri)
        return status_list.make_token(lst, uri=uri, issuer_key=KEY, iat=now[0], ttl_s=30)

    checker = StatusChecker(fetch, lambda uri: jose.public_jwk(KEY), clock=lambda: now[0])
    claim = status_list.status_claim(5, URI)
    assert checker.status(claim) == status_list.VALID
    lst.set(5, status_list.SUSPENDED)
    now[0] += 29
    assert checker.status(claim) == status_list.VALID  # cached copy still fresh
    assert len(served) == 1
    now[0] += 1
    assert checker.status(claim) == status_list.SUSPENDED
    assert len(served) == 2


def test_checker_wraps_transport_errors() -> None:
    def fetch(uri: str) -> str:
        raise OSError("connection refused")

    checker = StatusChecker(fetch, lambda uri: jose.public_jwk(KEY))
    with pytest.raises(StatusListError, match="unreachable"):
        checker.status(status_list.status_claim(0, URI))


def test_checker_reads_authoritative_lists_fresh() -> None:
    lst = StatusList(64, bits=2)
    served: list[str] = []

    def fetch(uri: str) -> str:
        served.append(uri)
        return status_list.make_token(lst, uri=uri, issuer_key=KEY, iat=1000, ttl_s=300)

    checker = StatusChecker(
        fetch, lambda uri: jose.public_jwk(KEY), clock=lambda: 1000, authoritative=lambda u: u == URI
    )
    claim = status_list.status_claim(3, URI)
    assert checker.status(claim) == status_list.VALID
    lst.set(3, status_list.INVALID)
    assert checker.status(claim) == status_list.INVALID
    assert len(served) == 2
