from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from identity import did_key

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sd-jwt"
ED = json.loads((VECTORS / "did-key" / "ed25519-x25519.json").read_text())
BLS = json.loads((VECTORS / "did-key" / "bls12381.json").read_text())


@pytest.mark.parametrize("did", sorted(ED))
def test_ed25519_vectors(did: str) -> None:
    entry = ED[did]
    vk = SigningKey(bytes.fromhex(entry["seed"])).verify_key.encode()
    assert did_key.encode("Ed25519", vk) == did
    vkp = entry["verificationKeyPair"]
    if "publicKeyBase58" in vkp:
        assert vk == did_key.b58decode(vkp["publicKeyBase58"])
    else:
        assert did_key.to_jwk(did) == vkp["publicKeyJwk"]
        assert did_key.from_jwk(vkp["publicKeyJwk"]) == did
    parsed = did_key.decode(did)
    assert parsed == did_key.DidKey("Ed25519", vk)
    assert parsed.did == did
    assert did_key.verification_method_id(did) == entry["didDocument"]["verificationMethod"][0]["id"]
    # The key-agreement key of the same document is an x25519 did:key fragment.
    kap = entry["keyAgreementKeyPair"]
    x_id = kap["id"].split("#")[-1]
    x_did = did_key.decode("did:key:" + x_id)
    assert x_did.key_type == "X25519"
    if "publicKeyBase58" in kap:
        assert x_did.public_key == did_key.b58decode(kap["publicKeyBase58"])
    else:
        assert did_key.to_jwk("did:key:" + x_id) == kap["publicKeyJwk"]


G2_DIDS = sorted(d for d in BLS if d.startswith("did:key:zUC7"))


@pytest.mark.parametrize("did", G2_DIDS)
def test_bls12381_g2_vectors(did: str) -> None:
    raw = did_key.b58decode(BLS[did]["verificationKeyPair"]["publicKeyBase58"])
    assert len(raw) == 96
    assert did_key.encode("Bls12381G2", raw) == did
    assert did_key.decode(did + "#frag") == did_key.DidKey("Bls12381G2", raw)


def test_g2_vectors_present() -> None:
    assert len(G2_DIDS) >= 4


def test_unsupported_g1g2_combined_key_rejected() -> None:
    combined = [d for d in BLS if d.startswith("did:key:z5Tc")]
    assert combined
    with pytest.raises(did_key.DidKeyError, match="unsupported multicodec"):
        did_key.decode(combined[0])


@pytest.mark.parametrize(
    "bad",
    ["did:web:example.com", "did:key:", "did:key:Qabc", "did:key:z0OIl", "did:key:z6Mk", "x" * 600],
)
def test_malformed(bad: str) -> None:
    with pytest.raises(did_key.DidKeyError):
        did_key.decode(bad)


def test_wrong_length_rejected_on_encode() -> None:
    with pytest.raises(did_key.DidKeyError):
        did_key.encode("Ed25519", b"\1" * 31)


@given(st.binary(min_size=32, max_size=32))
def test_ed25519_round_trip(raw: bytes) -> None:
    assert did_key.decode(did_key.encode("Ed25519", raw)).public_key == raw


@given(st.binary(max_size=80))
def test_base58_round_trip(raw: bytes) -> None:
    assert did_key.b58decode(did_key.b58encode(raw)) == raw
