"""Blind BBS signatures: official fixtures (both ciphersuites, every backend) and negatives."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity import bbs
from identity.bbs import _blind_core, blind
from identity.bbs.core import RandomScalars
from identity.bbs.interface import BBSCiphersuite
from identity.bbs.params import CURVE_ORDER

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bbs-blind"
SUITES = {"BLS12_381_SHA_256": "bls12-381-sha-256", "BLS12_381_SHAKE_256": "bls12-381-shake-256"}
BACKENDS = bbs.available_backends()
FAST_BACKEND = "arkworks" if "arkworks" in BACKENDS else BACKENDS[0]
MESSAGES = json.loads((VECTORS / "messages.json").read_text())


def _files(kind: str) -> list[str]:
    return sorted(p.name for p in (VECTORS / "bls12-381-sha-256" / kind).glob("*.json"))


def _load(suite: BBSCiphersuite, kind: str, name: str) -> Any:
    return json.loads((VECTORS / SUITES[suite.name] / kind / name).read_text())


def _hex(s: str | None) -> bytes:
    return bytes.fromhex(s or "")


def _hexes(items: list[str] | None) -> list[bytes]:
    return [bytes.fromhex(x) for x in items or []]


def _mock(suite: BBSCiphersuite, params: dict[str, Any], which: str) -> RandomScalars:
    return functools.partial(
        suite.seeded_random_scalars, params["SEED"].encode(), params[which]["DST"].encode()
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(SUITES))
def suite(request: pytest.FixtureRequest, backend: str) -> BBSCiphersuite:
    return bbs.suite_for(str(request.param), backend)


@pytest.fixture(params=list(SUITES))
def fast_suite(request: pytest.FixtureRequest) -> BBSCiphersuite:
    return bbs.suite_for(str(request.param), FAST_BACKEND)


def test_fixture_files_present() -> None:
    assert _files("commit") == ["commit001.json", "commit002.json"]
    assert _files("signature") == [f"signature{i:03d}.json" for i in range(1, 6)]
    assert _files("proof") == [f"proof{i:03d}.json" for i in range(1, 9)]
    for kind in ("commit", "signature", "proof"):
        assert sorted(p.name for p in (VECTORS / "bls12-381-shake-256" / kind).glob("*.json")) == _files(kind)


def test_api_id_and_generators(suite: BBSCiphersuite) -> None:
    v = json.loads((VECTORS / SUITES[suite.name] / "generators.json").read_text())
    be = suite.backend
    assert blind.api_id(suite) == v["generators"]["api_id"].encode()
    assert blind.api_id(suite) == suite.ciphersuite_id + b"BLIND_H2G_HM2S_"
    signer = suite.create_generators(len(v["generators"]["MsgGenerators"]) + 1, blind.api_id(suite))
    assert [be.g1_to_bytes(g).hex() for g in signer] == [
        v["generators"]["Q1"],
        *v["generators"]["MsgGenerators"],
    ]
    assert v["blindGenerators"]["api_id"].encode() == b"BLIND_" + blind.api_id(suite)
    count = len(v["blindGenerators"]["MsgGenerators"]) + 1
    blind_gens = _blind_core.blind_generators(suite, count, blind.api_id(suite))
    assert [be.g1_to_bytes(g).hex() for g in blind_gens] == [
        v["blindGenerators"]["Q1"],
        *v["blindGenerators"]["MsgGenerators"],
    ]


@pytest.mark.parametrize("case", _files("commit"))
def test_commit_vectors(suite: BBSCiphersuite, case: str) -> None:
    v = _load(suite, "commit", case)
    rng = _mock(suite, v["mockRngParameters"], "commit")
    commitment_with_proof, prover_blind = blind.commit(
        suite, _hexes(v["committedMessages"]), random_scalars=rng
    )
    assert commitment_with_proof.hex() == v["commitmentWithProof"]
    assert prover_blind == int(v["proverBlind"], 16)


@pytest.mark.parametrize("case", _files("signature"))
def test_signature_vectors(suite: BBSCiphersuite, case: str) -> None:
    v = _load(suite, "signature", case)
    sk, pk = _hex(v["signerKeyPair"]["secretKey"]), _hex(v["signerKeyPair"]["publicKey"])
    header, messages = _hex(v["header"]), _hexes(v["messages"])
    committed = _hexes(v["committedMessages"])
    prover_blind = int(v["proverBlind"] or "0", 16)
    signature = blind.blind_sign(suite, sk, pk, _hex(v["commitmentWithProof"]), header, messages)
    assert signature.hex() == v["signature"]
    assert v["result"]["valid"] is True
    assert blind.verify(suite, pk, signature, header, messages, committed, prover_blind)


@pytest.mark.parametrize("case", _files("proof"))
def test_proof_vectors(suite: BBSCiphersuite, case: str) -> None:
    v = _load(suite, "proof", case)
    pk, signature = _hex(v["signerPublicKey"]), _hex(v["signature"])
    header, ph = _hex(v["header"]), _hex(v["presentationHeader"])
    signer_count = v["L"]
    messages = _hexes(MESSAGES["messages"][:signer_count])
    committed = _hexes(MESSAGES["committedMessages"]) if v["commitmentWithProof"] else []
    revealed = {int(k): _hex(m) for k, m in v["revealedMessages"].items()}
    revealed_committed = {int(k): _hex(m) for k, m in (v["revealedCommittedMessages"] or {}).items()}
    assert all(messages[i] == m for i, m in revealed.items())
    assert all(committed[j] == m for j, m in revealed_committed.items())
    prover_blind = int(v["proverBlind"] or "0", 16)
    proof = blind.proof_gen(
        suite,
        pk,
        signature,
        header,
        ph,
        messages,
        committed,
        sorted(revealed),
        sorted(revealed_committed),
        prover_blind,
        random_scalars=_mock(suite, v["mockRngParameters"], "proof"),
    )
    assert proof.hex() == v["proof"]
    assert blind.proof_verify(
        suite,
        pk,
        _hex(v["proof"]),
        header,
        ph,
        signer_count,
        [revealed[i] for i in sorted(revealed)],
        [revealed_committed[j] for j in sorted(revealed_committed)],
        sorted(revealed),
        sorted(revealed_committed),
    )


# -- behaviour and negatives (fast backend; the vectors above cover both) ---------------------


def _keys(suite: BBSCiphersuite, seed: int = 7) -> tuple[bytes, bytes]:
    sk = suite.keygen(bytes([seed]) * 32, b"blind-tests")
    return sk, suite.sk_to_pk(sk)


SIGNER = [b"issuer: city of Civitas", b"age_over_18: true", b"expires: 2030-01-01"]
HIDDEN = [b"holder binding secret", b"date of birth 1990-05-17"]


@pytest.fixture
def issued(fast_suite: BBSCiphersuite) -> dict[str, Any]:
    sk, pk = _keys(fast_suite)
    cwp, prover_blind = blind.commit(fast_suite, HIDDEN)
    sig = blind.blind_sign(fast_suite, sk, pk, cwp, b"hdr", SIGNER)
    return {"suite": fast_suite, "sk": sk, "pk": pk, "cwp": cwp, "blind": prover_blind, "sig": sig}


def test_round_trip_and_selective_disclosure(issued: dict[str, Any]) -> None:
    s, pk, sig, b = issued["suite"], issued["pk"], issued["sig"], issued["blind"]
    assert blind.verify(s, pk, sig, b"hdr", SIGNER, HIDDEN, b)
    proof = blind.proof_gen(s, pk, sig, b"hdr", b"ph", SIGNER, HIDDEN, [1], [], b)
    assert blind.proof_verify(s, pk, proof, b"hdr", b"ph", 3, [SIGNER[1]], [], [1], [])
    # wrong presentation header, header, message, index or signer-message count
    assert not blind.proof_verify(s, pk, proof, b"hdr", b"other", 3, [SIGNER[1]], [], [1], [])
    assert not blind.proof_verify(s, pk, proof, b"x", b"ph", 3, [SIGNER[1]], [], [1], [])
    assert not blind.proof_verify(s, pk, proof, b"hdr", b"ph", 3, [SIGNER[0]], [], [1], [])
    assert not blind.proof_verify(s, pk, proof, b"hdr", b"ph", 3, [SIGNER[1]], [], [0], [])
    assert not blind.proof_verify(s, pk, proof, b"hdr", b"ph", 2, [SIGNER[1]], [], [1], [])
    # disclosing a committed message
    proof2 = blind.proof_gen(s, pk, sig, b"hdr", b"ph", SIGNER, HIDDEN, [], [1], b)
    assert blind.proof_verify(s, pk, proof2, b"hdr", b"ph", 3, [], [HIDDEN[1]], [], [1])
    assert not blind.proof_verify(s, pk, proof2, b"hdr", b"ph", 3, [], [HIDDEN[0]], [], [1])
    # two proofs of one signature share no bytes of their group elements
    proof3 = blind.proof_gen(s, pk, sig, b"hdr", b"ph", SIGNER, HIDDEN, [1], [], b)
    assert proof3 != proof and proof3[:144] != proof[:144]


def test_verify_needs_the_prover_blind_and_hidden_messages(issued: dict[str, Any]) -> None:
    s, pk, sig, b = issued["suite"], issued["pk"], issued["sig"], issued["blind"]
    assert not blind.verify(s, pk, sig, b"hdr", SIGNER, HIDDEN, (b + 1) % CURVE_ORDER)
    assert not blind.verify(s, pk, sig, b"hdr", SIGNER, HIDDEN, 0)
    assert not blind.verify(s, pk, sig, b"hdr", SIGNER, [HIDDEN[1], HIDDEN[0]], b)
    assert not blind.verify(s, pk, sig, b"hdr", SIGNER, HIDDEN[:1], b)
    assert not blind.verify(s, pk, sig, b"hdr", SIGNER[:2], HIDDEN, b)
    with pytest.raises(ValueError, match="does not verify"):
        blind.proof_gen(s, pk, sig, b"hdr", b"", SIGNER, HIDDEN, [], [], 0)


def test_signature_without_commitment(fast_suite: BBSCiphersuite) -> None:
    sk, pk = _keys(fast_suite)
    sig = blind.blind_sign(fast_suite, sk, pk, b"", b"h", SIGNER)
    assert blind.verify(fast_suite, pk, sig, b"h", SIGNER)
    assert not blind.verify(fast_suite, pk, sig, b"h", SIGNER, [b"x"])
    # not a plain BBS signature: the interface identifier differs
    assert not fast_suite.verify(pk, sig, b"h", SIGNER)


def test_tampered_commitment_is_rejected_by_blind_sign(issued: dict[str, Any]) -> None:
    s, sk, pk, cwp = issued["suite"], issued["sk"], issued["pk"], issued["cwp"]
    tampered = cwp[:-1] + bytes([cwp[-1] ^ 1])  # challenge
    with pytest.raises(ValueError, match="commitment"):
        blind.blind_sign(s, sk, pk, tampered, b"hdr", SIGNER)
    response = cwp[:60] + bytes([cwp[60] ^ 0x10]) + cwp[61:]  # s^
    with pytest.raises(ValueError, match="commitment"):
        blind.blind_sign(s, sk, pk, response, b"hdr", SIGNER)
    other_cwp, _ = blind.commit(s, [b"other"])
    spliced = other_cwp[:48] + cwp[48:]  # another commitment point with this proof
    with pytest.raises(ValueError):
        blind.blind_sign(s, sk, pk, spliced, b"hdr", SIGNER)
    for bad in (cwp[:-1], cwp + b"\x00", cwp[:100], b"\x00" * len(cwp)):
        with pytest.raises(ValueError):
            blind.blind_sign(s, sk, pk, bad, b"hdr", SIGNER)
    # a commitment made under another interface (plain BBS api_id) does not verify
    gens = _blind_core.blind_generators(s, 2, s.api_id)
    foreign, _ = _blind_core.core_commit(s, gens, [5], s.api_id, s.calculate_random_scalars)
    with pytest.raises(ValueError):
        blind.blind_sign(s, sk, pk, foreign, b"hdr", SIGNER)


def test_blind_sign_argument_checks(issued: dict[str, Any]) -> None:
    s, sk, pk, cwp = issued["suite"], issued["sk"], issued["pk"], issued["cwp"]
    _, other_pk = _keys(s, 9)
    with pytest.raises(ValueError, match="public key"):
        blind.blind_sign(s, sk, other_pk, cwp, b"", SIGNER)
    with pytest.raises(ValueError):
        blind.blind_sign(s, sk[:31], pk, cwp, b"", SIGNER)
    with pytest.raises(ValueError):
        blind.blind_sign(s, sk, pk, cwp, b"", [b"ok", "not bytes"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at most"):
        blind.blind_sign(s, sk, pk, cwp, b"", [b""] * bbs.MAX_MESSAGES)
    with pytest.raises(ValueError, match="at most"):
        blind.commit(s, [b""] * (bbs.MAX_MESSAGES + 1))


def test_proof_gen_argument_checks(issued: dict[str, Any]) -> None:
    s, pk, sig, b = issued["suite"], issued["pk"], issued["sig"], issued["blind"]
    for signer_idx, committed_idx in (([3], []), ([], [2]), ([1, 0], []), ([0, 0], []), ([-1], [])):
        with pytest.raises(ValueError):
            blind.proof_gen(s, pk, sig, b"hdr", b"", SIGNER, HIDDEN, signer_idx, committed_idx, b)
    with pytest.raises(ValueError):
        blind.proof_gen(s, pk, sig, b"hdr", b"", SIGNER, HIDDEN, [], [], -1)


def test_proof_verify_rejects_bad_arguments_without_raising(issued: dict[str, Any]) -> None:
    s, pk, sig, b = issued["suite"], issued["pk"], issued["sig"], issued["blind"]
    proof = blind.proof_gen(s, pk, sig, b"hdr", b"", SIGNER, HIDDEN, [0], [0], b)
    good = (s, pk, proof, b"hdr", b"", 3, [SIGNER[0]], [HIDDEN[0]], [0], [0])
    assert blind.proof_verify(*good)
    bad_args: list[tuple[Any, ...]] = [
        (s, pk, proof, b"hdr", b"", -1, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
        (s, pk, proof, b"hdr", b"", 10**6, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
        (s, pk, proof, b"hdr", b"", True, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
        (s, pk, proof, b"hdr", b"", 3, [SIGNER[0]], [HIDDEN[0]], [5], [0]),
        (s, pk, proof, b"hdr", b"", 3, [SIGNER[0]], [HIDDEN[0]], [0], [9]),
        (s, pk, proof, b"hdr", b"", 3, [SIGNER[0]], [], [0], [0]),
        (s, pk, proof, b"hdr", b"", 3, ["str"], [HIDDEN[0]], [0], [0]),
        (s, pk[:95], proof, b"hdr", b"", 3, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
        (s, pk, proof + b"\x00" * 32, b"hdr", b"", 3, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
        (s, pk, proof[:-1], b"hdr", b"", 3, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
        (s, pk, b"", b"hdr", b"", 0, [], [], [], []),
        (s, pk, "proof", b"hdr", b"", 3, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
        (s, pk, proof, None, b"", 3, [SIGNER[0]], [HIDDEN[0]], [0], [0]),
    ]
    for args in bad_args:
        assert blind.proof_verify(*args) is False


def test_verify_rejects_garbage_without_raising(issued: dict[str, Any]) -> None:
    s, pk, sig, b = issued["suite"], issued["pk"], issued["sig"], issued["blind"]
    for args in (
        (s, pk, sig[:-1], b"hdr", SIGNER, HIDDEN, b),
        (s, pk, b"\xff" * 80, b"hdr", SIGNER, HIDDEN, b),
        (s, b"\x00" * 96, sig, b"hdr", SIGNER, HIDDEN, b),
        (s, pk, sig, b"hdr", SIGNER, HIDDEN, -5),
        (s, pk, sig, b"hdr", SIGNER, HIDDEN, CURVE_ORDER),
        (s, pk, sig, b"hdr", "messages", HIDDEN, b),
        (s, pk, sig, b"hdr", [None], HIDDEN, b),
    ):
        assert blind.verify(*args) is False


FLIP = st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=255))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flip=FLIP)
def test_flipped_proof_bytes_never_raise(issued: dict[str, Any], flip: tuple[int, int]) -> None:
    s, pk, sig, b = issued["suite"], issued["pk"], issued["sig"], issued["blind"]
    proof = _cached_proof(s, pk, sig, b)
    pos, mask = flip[0] % len(proof), flip[1]
    mutated = proof[:pos] + bytes([proof[pos] ^ mask]) + proof[pos + 1 :]
    assert blind.proof_verify(s, pk, mutated, b"hdr", b"", 3, [SIGNER[2]], [], [2], []) is False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flip=FLIP)
def test_flipped_commitment_bytes_are_refused_with_value_error(
    issued: dict[str, Any], flip: tuple[int, int]
) -> None:
    s, sk, pk, cwp = issued["suite"], issued["sk"], issued["pk"], issued["cwp"]
    pos, mask = flip[0] % len(cwp), flip[1]
    mutated = cwp[:pos] + bytes([cwp[pos] ^ mask]) + cwp[pos + 1 :]
    gens = _blind_core.blind_generators(s, len(HIDDEN) + 1, blind.api_id(s))
    assert _blind_core.deserialize_and_validate_commit(s, mutated, gens, blind.api_id(s)) is None
    with pytest.raises(ValueError):
        blind.blind_sign(s, sk, pk, mutated, b"hdr", SIGNER)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_random_proof_bytes_never_raise(issued: dict[str, Any], data: bytes) -> None:
    s, pk = issued["suite"], issued["pk"]
    assert blind.proof_verify(s, pk, data, b"hdr", b"", 3, [SIGNER[2]], [], [2], []) is False


@functools.cache
def _cached_proof(s: BBSCiphersuite, pk: bytes, sig: bytes, prover_blind: int) -> bytes:
    return blind.proof_gen(s, pk, sig, b"hdr", b"", SIGNER, HIDDEN, [2], [], prover_blind)
