"""Signed OpenID4VP Request Objects (RFC 9101) with a did:key client: what a wallet accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from identity import did_key, jose
from identity import request_object as ro

NOW = 1_767_225_600
KEY = jose.generate_ed25519()
SIGNER = ro.RequestSigner.did_key(KEY)
CLIENT_ID = SIGNER.client_id


def _params(**override: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": "https://city.example/identity/presentation-responses",
        "nonce": "n-0S6_WzA2Mj",
        "state": "s-1",
        "dcql_query": {"credentials": [{"id": "a", "format": "dc+sd-jwt"}]},
    }
    params.update(override)
    return {k: v for k, v in params.items() if v is not None}


def _sign(params: dict[str, Any], key: dict[str, Any] = KEY, **header: Any) -> str:
    """A JWS over exactly these claims (for forgeries the production signer refuses to make)."""
    did = ro.client_id_for(key)[len(ro.CLIENT_ID_PREFIX) :]
    head = {"typ": ro.TYP, "alg": "EdDSA", "kid": did_key.verification_method_id(did), **header}
    return jose.sign_compact(
        {k: v for k, v in head.items() if v is not None}, json.dumps(params).encode(), key
    )


def _claims(**override: Any) -> dict[str, Any]:
    return {
        **_params(),
        "iss": CLIENT_ID,
        "aud": ro.SELF_ISSUED_AUD,
        "iat": NOW,
        "exp": NOW + 300,
        **override,
    }


def test_sign_and_verify_round_trip() -> None:
    token = ro.sign_request(_params(), SIGNER, iat=NOW, exp=NOW + 300)
    header = json.loads(jose.b64u_decode(token.split(".")[0]))
    did = CLIENT_ID.removeprefix("decentralized_identifier:")
    assert CLIENT_ID.startswith("decentralized_identifier:did:key:z6Mk")
    assert header == {"typ": "oauth-authz-req+jwt", "alg": "EdDSA", "kid": f"{did}#{did[8:]}"}
    params = ro.verify_request(token, now=NOW + 10, expected_client_id=CLIENT_ID)
    assert params["iss"] == CLIENT_ID and params["aud"] == "https://self-issued.me/v2"
    assert params["nonce"] == "n-0S6_WzA2Mj" and params["exp"] == NOW + 300
    # a loopback http response_uri is fine (local development and the demo)
    local = ro.sign_request(_params(response_uri="http://127.0.0.1:8000/r"), SIGNER, iat=NOW, exp=NOW + 1)
    assert ro.verify_request(local, now=NOW)["response_uri"] == "http://127.0.0.1:8000/r"


def test_signer_refuses_a_client_id_of_another_key() -> None:
    with pytest.raises(ro.RequestObjectError, match="does not name the signing key"):
        ro.sign_request(_params(client_id="redirect_uri:https://x.example/r"), SIGNER, iat=NOW, exp=NOW + 1)
    with pytest.raises(ro.RequestObjectError, match="Ed25519 did:key"):
        ro.client_id_for(jose.generate_ec_p256())


def _tampered() -> str:
    head, payload, sig = ro.sign_request(_params(), SIGNER, iat=NOW, exp=NOW + 300).split(".")
    claims = json.loads(jose.b64u_decode(payload))
    claims["response_uri"] = "https://evil.example/collect"
    return ".".join((head, jose.b64u_encode(json.dumps(claims).encode()), sig))


def _unsigned() -> str:
    head = jose.b64u_encode(json.dumps({"typ": ro.TYP, "alg": "none"}).encode())
    return f"{head}.{jose.b64u_encode(json.dumps(_claims()).encode())}."


def _es256_naming_this_verifier() -> str:
    head = {"typ": ro.TYP, "alg": "ES256", "kid": did_key.verification_method_id(CLIENT_ID[25:])}
    return jose.sign_compact(head, json.dumps(_claims()).encode(), jose.generate_ec_p256())


OTHER = jose.generate_ed25519()
OTHER_DID = ro.client_id_for(OTHER)[len(ro.CLIENT_ID_PREFIX) :]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (json.dumps(_claims()), "not a compact JWS|not base64url JSON"),  # the old unsigned JSON
        ('{"client_id": "x"}', "not a compact JWS"),
        (_unsigned(), "kid must be"),
        ("a.b.c", "header is not base64url JSON"),
        (_tampered(), "signature invalid"),
        # signed by another key while naming this verifier's did:key in kid
        (_sign(_claims(), OTHER, kid=did_key.verification_method_id(CLIENT_ID[25:])), "signature invalid"),
        (_es256_naming_this_verifier(), "signature invalid"),
        # signed by another did:key, claiming to be this verifier
        (_sign(_claims(), OTHER), "client_id does not name the key"),
        (_sign(_claims(), typ="JWT"), "typ must be"),
        (_sign(_claims(), typ=None), "typ must be"),
        (_sign(_claims(), kid=None), "kid must be"),
        (_sign(_claims(), kid=f"{OTHER_DID}#other"), "verification method"),
        (_sign(_claims(), kid="did:web:city.example#key-1"), "does not resolve"),
        (_sign(_claims(aud="https://wallet.example")), "aud of the request object"),
        (_sign(_claims(aud=None)), "aud of the request object"),
        (_sign(_claims(iss="https://city.example")), "iss of the request object"),
        (_sign(_claims(exp=NOW - 61)), "expired"),
        (_sign(_claims(iat=NOW + 61)), "in the future"),
        (_sign(_claims(request_uri="https://city.example/q/2")), "must not nest"),
        (_sign(_claims(response_type="code")), "response_type"),
        (_sign(_claims(response_mode="fragment")), "direct_post"),
        (_sign(_claims(response_uri="http://city.example/r")), "https URL"),
        (_sign(_claims(response_uri=None)), "response_uri is required"),
        (_sign(_claims(nonce=None)), "no usable nonce"),
        (_sign(_claims(state="")), "no usable state"),
        ("x" * (ro.MAX_REQUEST_CHARS + 1), "not a compact JWS"),
    ],
)
def test_refused(token: str, message: str) -> None:
    with pytest.raises(ro.RequestObjectError, match=message):
        ro.verify_request(token, now=NOW)


def test_client_id_must_match_the_authorization_request() -> None:
    token = ro.sign_request(_params(), SIGNER, iat=NOW, exp=NOW + 300)
    with pytest.raises(ro.RequestObjectError, match="differs from the one in the authorization request"):
        ro.verify_request(token, now=NOW, expected_client_id=ro.client_id_for(OTHER))


def test_skew_edges() -> None:
    token = ro.sign_request(_params(), SIGNER, iat=NOW, exp=NOW + 300)
    assert ro.verify_request(token, now=NOW - 60)  # iat 60 s ahead of the wallet: accepted
    with pytest.raises(ro.RequestObjectError, match="in the future"):
        ro.verify_request(token, now=NOW - 61)
    assert ro.verify_request(token, now=NOW + 359)  # exp 59 s ago: within the skew
    with pytest.raises(ro.RequestObjectError, match="expired"):
        ro.verify_request(token, now=NOW + 360)


def test_wallet_nonce_must_be_the_one_the_wallet_sent() -> None:
    sent = "qPmxiNFCR3QTm19POc8u"
    token = ro.sign_request(_params(wallet_nonce=sent), SIGNER, iat=NOW, exp=NOW + 300)
    assert ro.verify_request(token, now=NOW, expected_wallet_nonce=sent)["wallet_nonce"] == sent
    # a wallet that fetched with GET sent no nonce and has nothing to compare
    assert ro.verify_request(token, now=NOW)["wallet_nonce"] == sent
    with pytest.raises(ro.RequestObjectError, match="wallet_nonce differs"):
        ro.verify_request(token, now=NOW, expected_wallet_nonce=sent[:-1] + "v")
    without = ro.sign_request(_params(), SIGNER, iat=NOW, exp=NOW + 300)  # e.g. recorded from a GET
    with pytest.raises(ro.RequestObjectError, match="lacks the wallet_nonce"):
        ro.verify_request(without, now=NOW, expected_wallet_nonce=sent)
    not_a_string = _sign(_claims(wallet_nonce=12345))
    with pytest.raises(ro.RequestObjectError, match="lacks the wallet_nonce"):
        ro.verify_request(not_a_string, now=NOW, expected_wallet_nonce="12345")


def test_wallet_nonce_limits() -> None:
    edge = "~" * ro.WALLET_NONCE_MAX_CHARS
    assert ro.check_wallet_nonce(edge) == edge
    assert ro.check_wallet_nonce("a") == "a"
    assert ro.check_wallet_nonce("aB3-_.~+/=!") == "aB3-_.~+/=!"
    for bad in ("", edge + "~", "two words", "tab\t", "nonce\n", "ü", None, 7):
        with pytest.raises(ro.RequestObjectError, match="1 to 128 visible ASCII"):
            ro.check_wallet_nonce(bad)
    assert ro.REQUEST_URI_METHODS == ("get", "post")
