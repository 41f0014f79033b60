"""The JOSE layer under SD-JWT: strict base64url, JWK import, the EdDSA algorithm (libsodium signs, ed25519-zebra verifies), key cache."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey, import_key

from identity import jose

MSG = b'{"iss":"https://city.example"}'


# --------------------------------------------------------------------------------------------
# base64url


@given(st.binary(max_size=200))
def test_b64u_round_trip_matches_the_standard_library(data: bytes) -> None:
    text = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert jose.b64u_encode(data) == text
    assert jose.b64u_decode(text) == data


@pytest.mark.parametrize(
    "text",
    ["QQ==", "QQ=", "a+b/", "ab c", "ab\ncd", "abcde", "é", "ab.c", "YWJj\x00", "QUJD=", "=QUJD"],
)
def test_b64u_decode_refuses_anything_but_unpadded_base64url(text: str) -> None:
    with pytest.raises(jose.JoseFailure):
        jose.b64u_decode(text)


def test_b64u_decode_accepts_both_urlsafe_characters() -> None:
    assert jose.b64u_decode("-_-_") == base64.urlsafe_b64decode("-_-_")
    assert jose.b64u_decode("") == b""


def test_b64u_decode_takes_ascii_bytes_with_the_same_rules() -> None:
    assert jose.b64u_decode(b"-_-_") == jose.b64u_decode("-_-_")
    for bad in (b"QQ==", b"\xff\xfe", b"a+b/", b"abcde"):
        with pytest.raises(jose.JoseFailure):
            jose.b64u_decode(bad)
    with pytest.raises(jose.JoseFailure):
        jose.b64u_decode(1234)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# JWK import


@pytest.mark.parametrize("generate", [jose.generate_ed25519, jose.generate_ec_p256])
def test_public_import_equals_joserfc_import(generate: Any) -> None:
    public = jose.public_jwk(generate())
    public["kid"] = "k-1"
    ours = jose.load_key(public, cache=False)
    theirs = import_key(dict(public))
    assert ours.as_dict(private=False) == theirs.as_dict(private=False)
    assert ours.thumbprint() == theirs.thumbprint()
    assert ours.kid == "k-1" and not ours.is_private


def _flip_last_bits(text: str) -> str:
    """The same bytes spelled with non-zero trailing bits (43 chars carry 2 spare bits)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return text[:-1] + alphabet[alphabet.index(text[-1]) | 1]


@pytest.mark.parametrize("generate,member", [(jose.generate_ed25519, "x"), (jose.generate_ec_p256, "y")])
def test_import_refuses_short_and_non_canonical_members(generate: Any, member: str) -> None:
    public = jose.public_jwk(generate())
    raw = jose.b64u_decode(public[member])
    short = dict(public, **{member: jose.b64u_encode(raw[1:])})
    with pytest.raises(jose.JoseFailure, match="32 bytes"):
        jose.load_key(short, cache=False)
    odd = dict(public, **{member: _flip_last_bits(public[member])})
    assert odd[member] != public[member] and jose.b64u_decode(odd[member]) == raw
    with pytest.raises(jose.JoseFailure, match="canonical"):
        jose.load_key(odd, cache=False)
    with pytest.raises(jose.JoseFailure):
        jose.load_key(dict(public, **{member: 7}), cache=False)


def test_import_refuses_a_point_off_the_curve() -> None:
    public = jose.public_jwk(jose.generate_ec_p256())
    y = bytearray(jose.b64u_decode(public["y"]))
    y[-1] ^= 1
    with pytest.raises(jose.JoseFailure, match="invalid JWK"):
        jose.load_key(dict(public, y=jose.b64u_encode(bytes(y))), cache=False)


@pytest.mark.parametrize(
    "extra",
    [{"use": "enc", "key_ops": ["verify"]}, {"use": 5}, {"key_ops": ["bogus"]}, {"kid": 3}, {"alg": 1}],
)
@pytest.mark.parametrize("generate", [jose.generate_ed25519, jose.generate_ec_p256])
def test_import_still_validates_the_other_jwk_members(generate: Any, extra: dict[str, Any]) -> None:
    public = dict(jose.public_jwk(generate()), **extra)
    with pytest.raises(JoseError):
        import_key(dict(public))  # joserfc refuses it ...
    with pytest.raises(jose.JoseFailure, match="invalid JWK"):
        jose.load_key(public, cache=False)  # ... and so do we


@pytest.mark.parametrize("generate", [jose.generate_ed25519, jose.generate_ec_p256])
def test_private_keys_import_and_sign(generate: Any) -> None:
    private = generate()
    token = jose.sign_compact({"typ": "JWT"}, MSG, private)
    key = jose.load_key(jose.public_jwk(private), cache=False)
    assert jose.verify_compact(token, key)[1] == MSG
    assert jose.load_key(private, cache=False).is_private


# --------------------------------------------------------------------------------------------
# JWS verification through joserfc with our EdDSA algorithm


def _ed_key_pair() -> tuple[dict[str, Any], Any]:
    private = jose.generate_ed25519()
    return private, jose.load_key(jose.public_jwk(private), cache=False)


def test_eddsa_signature_is_the_standard_one() -> None:
    """libsodium and OpenSSL Ed25519 are both deterministic: joserfc's own EdDSA verifies ours."""
    private, _ = _ed_key_pair()
    token = jose.sign_compact({}, MSG, private)
    plain = jws.deserialize_compact(token, import_key(jose.public_jwk(private)), algorithms=["EdDSA"])
    assert plain.payload == MSG
    assert jose.sign_compact({}, MSG, private) == token


def test_eddsa_refuses_tampering_and_bad_signature_lengths() -> None:
    private, public = _ed_key_pair()
    token = jose.sign_compact({}, MSG, private)
    head, payload, sig = token.split(".")
    raw = jose.b64u_decode(sig)
    for bad_sig in (raw[:-1], raw + b"\x00", bytes(64), raw[32:] + raw[:32]):
        with pytest.raises(jose.JoseFailure) as info:
            jose.verify_compact(f"{head}.{payload}.{jose.b64u_encode(bad_sig)}", public)
        assert info.value.kind == "signature"
    other = jose.b64u_encode(b'{"iss":"https://other.example"}')
    with pytest.raises(jose.JoseFailure) as info:
        jose.verify_compact(f"{head}.{other}.{sig}", public)
    assert info.value.kind == "signature"
    _, stranger = _ed_key_pair()
    with pytest.raises(jose.JoseFailure):
        jose.verify_compact(token, stranger)


def test_eddsa_respects_key_use_and_key_ops() -> None:
    private, _ = _ed_key_pair()
    token = jose.sign_compact({}, MSG, private)
    public = jose.public_jwk(private)
    for restricted in (dict(public, use="enc"), dict(public, key_ops=["encrypt"])):
        with pytest.raises(jose.JoseFailure):
            jose.verify_compact(token, jose.load_key(restricted, cache=False))
    allowed = jose.load_key(dict(public, use="sig", key_ops=["verify"]), cache=False)
    assert jose.verify_compact(token, allowed)[1] == MSG


def test_eddsa_with_a_key_that_is_not_ed25519_never_verifies() -> None:
    private, _ = _ed_key_pair()
    token = jose.sign_compact({}, MSG, private)
    ed448 = OKPKey.generate_key("Ed448", private=False)
    with pytest.raises(jose.JoseFailure) as info:
        jose.verify_compact(token, ed448)
    assert info.value.kind == "signature"


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256", "RS256", "Ed448", None])
def test_eddsa_key_accepts_only_eddsa_algs(alg: str | None) -> None:
    private, public = _ed_key_pair()
    head, payload, sig = jose.sign_compact({}, MSG, private).split(".")
    header = json.loads(jose.b64u_decode(head))
    if alg is None:
        del header["alg"]
    else:
        header["alg"] = alg
    forged = f"{jose.b64u_encode(json.dumps(header).encode())}.{payload}.{sig}"
    with pytest.raises(jose.JoseFailure) as info:
        jose.verify_compact(forged, public)
    assert info.value.kind == "alg"


# --------------------------------------------------------------------------------------------
# parsed-key cache (issuer keys)


def test_cache_returns_the_parsed_key_for_the_same_jwk_only() -> None:
    first = jose.public_jwk(jose.generate_ed25519())
    assert jose.load_key(first) is jose.load_key(dict(reversed(list(first.items()))))
    rotated = jose.public_jwk(jose.generate_ed25519())
    assert jose.load_key(rotated) is not jose.load_key(first)
    assert jose.load_key(rotated).as_dict()["x"] == rotated["x"]
    # a token signed by the old key does not verify with the rotated one, cached or not
    token = jose.sign_compact({}, MSG, jose.generate_ed25519())
    with pytest.raises(jose.JoseFailure):
        jose.verify_compact(token, jose.load_key(rotated))
    # same key material under another kid is another entry (the kid is part of the JWK)
    renamed = dict(first, kid="other")
    assert jose.load_key(renamed).kid == "other" and jose.load_key(first).kid is None


def test_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = jose._KeyCache(3)
    keys = [jose.public_jwk(jose.generate_ed25519()) for _ in range(4)]
    parsed = [cache.get(k) for k in keys[:3]]
    assert cache.get(keys[0]) is parsed[0]  # keys[0] is now the most recent
    cache.get(keys[3])  # evicts keys[1]
    assert len(cache) == 3
    assert cache.get(keys[0]) is parsed[0] and cache.get(keys[2]) is parsed[2]
    assert cache.get(keys[1]) is not parsed[1]
    assert len(cache) == 3


def test_cache_fast_path_compares_the_whole_jwk_never_the_object() -> None:
    """The last key returned is served again only for an equal JWK, whatever dict carries it."""
    cache = jose._KeyCache(8)
    first, second = (jose.public_jwk(jose.generate_ed25519()) for _ in range(2))
    for _ in range(3):  # alternating issuers: each gets its own key every time
        assert cache.get(first).as_dict()["x"] == first["x"]
        assert cache.get(second).as_dict()["x"] == second["x"]
    held = dict(first)
    parsed = cache.get(held)
    assert cache.get(dict(first)) is parsed
    held["x"] = second["x"]  # the caller reuses its dict for another key: no stale answer
    assert cache.get(held).as_dict()["x"] == second["x"]
    restricted = dict(first, key_ops=["verify"])  # one member more is another key
    assert cache.get(restricted) is not parsed
    assert cache.get(restricted).as_dict()["key_ops"] == ["verify"]


def test_signer_cache_never_signs_with_a_dead_key_object() -> None:
    """Signers are kept per key object; a new key that reuses a freed object's id gets its own."""
    for _ in range(50):
        private = jose.generate_ed25519()
        key = jose.load_key(private, cache=False)
        token = jws.serialize_compact({"alg": "EdDSA"}, MSG, key, registry=jose._REGISTRIES["OKP"])
        assert jose.verify_compact(token, jose.load_key(jose.public_jwk(private), cache=False))[1] == MSG
        del key
