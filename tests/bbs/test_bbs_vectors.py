"""Official draft-irtf-cfrg-bbs-signatures fixtures, both ciphersuites, on every backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from identity import bbs
from identity.bbs.interface import BBSCiphersuite

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bbs"
SUITES = {"BLS12_381_SHA_256": "bls12-381-sha-256", "BLS12_381_SHAKE_256": "bls12-381-shake-256"}
BACKENDS = bbs.available_backends()


def _load(suite: str, name: str) -> Any:
    return json.loads((VECTORS / SUITES[suite] / name).read_text())


def _files(kind: str) -> list[str]:
    return sorted(p.name for p in (VECTORS / "bls12-381-sha-256" / kind).glob("*.json"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(SUITES))
def suite(request: pytest.FixtureRequest, backend: str) -> BBSCiphersuite:
    return bbs.suite_for(str(request.param), backend)


def _hex(s: str) -> bytes:
    return bytes.fromhex(s)


def test_all_fixture_files_present() -> None:
    assert _files("signature") == [f"signature{i:03d}.json" for i in range(1, 11)]
    assert _files("proof") == [f"proof{i:03d}.json" for i in range(1, 16)]
    for folder in SUITES.values():
        assert sorted(p.name for p in (VECTORS / folder / "proof").glob("*.json")) == _files("proof")


def test_ciphersuite_ids(suite: BBSCiphersuite) -> None:
    expected = {
        "BLS12_381_SHA_256": b"BBS_BLS12381G1_XMD:SHA-256_SSWU_RO_",
        "BLS12_381_SHAKE_256": b"BBS_BLS12381G1_XOF:SHAKE-256_SSWU_RO_",
    }[suite.name]
    assert suite.ciphersuite_id == expected
    assert suite.api_id == expected + b"H2G_HM2S_"


def test_keypair(suite: BBSCiphersuite) -> None:
    v = _load(suite.name, "keypair.json")
    sk = suite.keygen(_hex(v["keyMaterial"]), _hex(v["keyInfo"]), _hex(v["keyDst"]))
    assert sk.hex() == v["keyPair"]["secretKey"]
    assert suite.sk_to_pk(sk).hex() == v["keyPair"]["publicKey"]


def test_hash_to_scalar(suite: BBSCiphersuite) -> None:
    v = _load(suite.name, "h2s.json")
    assert suite.hash_to_scalar(_hex(v["message"]), _hex(v["dst"])) == int(v["scalar"], 16)


def test_map_message_to_scalar(suite: BBSCiphersuite) -> None:
    v = _load(suite.name, "MapMessageToScalarAsHash.json")
    assert _hex(v["dst"]) == suite.api_id + b"MAP_MSG_TO_SCALAR_AS_HASH_"
    scalars = suite.messages_to_scalars([_hex(c["message"]) for c in v["cases"]], suite.api_id)
    assert scalars == [int(c["scalar"], 16) for c in v["cases"]]


def test_generators(suite: BBSCiphersuite) -> None:
    v = _load(suite.name, "generators.json")
    be = suite.backend
    assert be.g1_to_bytes(suite.P1).hex() == v["P1"]
    gens = suite.create_generators(len(v["MsgGenerators"]) + 1, suite.api_id)
    assert be.g1_to_bytes(gens[0]).hex() == v["Q1"]
    assert [be.g1_to_bytes(g).hex() for g in gens[1:]] == v["MsgGenerators"]
    # a shorter request is a prefix of the cached list
    assert [be.g1_to_bytes(g) for g in suite.create_generators(3, suite.api_id)] == [
        be.g1_to_bytes(g) for g in gens[:3]
    ]


def test_mocked_random_scalars(suite: BBSCiphersuite) -> None:
    v = _load(suite.name, "mockedRng.json")
    assert _hex(v["dst"]) == suite.api_id + b"MOCK_RANDOM_SCALARS_DST_"
    got = suite.seeded_random_scalars(_hex(v["seed"]), _hex(v["dst"]), v["count"])
    assert got == [int(s, 16) for s in v["mockedScalars"]]


@pytest.mark.parametrize("name", _files("signature"))
def test_signature_fixture(suite: BBSCiphersuite, name: str) -> None:
    v = _load(suite.name, f"signature/{name}")
    pk = _hex(v["signerKeyPair"]["publicKey"])
    header = _hex(v["header"])
    messages = [_hex(m) for m in v["messages"]]
    signature = _hex(v["signature"])
    assert suite.verify(pk, signature, header, messages) is v["result"]["valid"]
    if v["result"]["valid"]:
        assert suite.sign(_hex(v["signerKeyPair"]["secretKey"]), pk, header, messages) == signature
        gens = suite.create_generators(len(messages) + 1, suite.api_id)
        domain = suite.calculate_domain(pk, gens[0], gens[1:], header, suite.api_id)
        assert domain == int(v["trace"]["domain"], 16)


@pytest.mark.parametrize("name", _files("proof"))
def test_proof_fixture(suite: BBSCiphersuite, name: str) -> None:
    v = _load(suite.name, f"proof/{name}")
    rng = _load(suite.name, "mockedRng.json")
    pk = _hex(v["signerPublicKey"])
    header = _hex(v["header"])
    ph = _hex(v["presentationHeader"])
    messages = [_hex(m) for m in v["messages"]]
    indexes = list(v["disclosedIndexes"])
    proof = _hex(v["proof"])
    disclosed = [messages[i] for i in indexes]
    assert suite.proof_verify(pk, proof, header, ph, disclosed, indexes) is v["result"]["valid"]
    if not v["result"]["valid"]:
        return

    def mocked(count: int) -> list[int]:
        return suite.seeded_random_scalars(_hex(rng["seed"]), _hex(rng["dst"]), count)

    trace = v["trace"]["random_scalars"]
    expected = [int(trace[k], 16) for k in ("r1", "r2", "e_tilde", "r1_tilde", "r3_tilde")]
    expected += [int(s, 16) for s in trace["m_tilde_scalars"]]
    assert mocked(len(expected)) == expected
    got = suite._proof_gen(pk, _hex(v["signature"]), header, ph, messages, indexes, mocked)
    assert got.hex() == v["proof"]
    # the trace's intermediate values, through the core subroutines
    be = suite.backend
    parsed = suite.octets_to_proof(proof)
    gens = suite.create_generators(len(messages) + 1, suite.api_id)
    init = suite.proof_verify_init(
        pk, parsed, gens, header, suite.messages_to_scalars(disclosed, suite.api_id), indexes, suite.api_id
    )
    assert be.g1_to_bytes(init.T1).hex() == v["trace"]["T1"]
    assert be.g1_to_bytes(init.T2).hex() == v["trace"]["T2"]
    assert init.domain == int(v["trace"]["domain"], 16)
    assert parsed.challenge == int(v["trace"]["challenge"], 16)
