"""Properties: backends agree byte for byte, proofs are unlinkable, round trips hold."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity import bbs
from identity.bbs.core import R
from identity.bbs.interface import BBSCiphersuite

BACKENDS = bbs.available_backends()
needs_two_backends = pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both BLS12-381 backends")


def _fixed_scalars(suite: BBSCiphersuite) -> Callable[[int], list[int]]:
    def scalars(count: int) -> list[int]:
        return suite.seeded_random_scalars(b"fixed seed for cross-backend checks", b"TEST_DST", count)

    return scalars


@needs_two_backends
@pytest.mark.parametrize("name", bbs.SUITE_NAMES)
@settings(max_examples=6, deadline=None)
@given(
    key_material=st.binary(min_size=32, max_size=40),
    header=st.binary(max_size=24),
    ph=st.binary(max_size=16),
    messages=st.lists(st.binary(max_size=20), min_size=1, max_size=4),
    data=st.data(),
)
def test_backends_agree(
    name: str, key_material: bytes, header: bytes, ph: bytes, messages: list[bytes], data: st.DataObject
) -> None:
    fast = bbs.suite_for(name, "arkworks")
    ref = bbs.suite_for(name, "py_ecc")
    sk = fast.keygen(key_material)
    assert ref.keygen(key_material) == sk
    pk = fast.sk_to_pk(sk)
    assert ref.sk_to_pk(sk) == pk
    sig = fast.sign(sk, pk, header, messages)
    assert ref.sign(sk, pk, header, messages) == sig
    indexes = sorted(data.draw(st.sets(st.integers(0, len(messages) - 1))))
    proof = fast._proof_gen(pk, sig, header, ph, messages, indexes, _fixed_scalars(fast))
    assert ref._proof_gen(pk, sig, header, ph, messages, indexes, _fixed_scalars(ref)) == proof
    disclosed = [messages[i] for i in indexes]
    assert ref.proof_verify(pk, proof, header, ph, disclosed, indexes)
    assert fast.proof_verify(pk, proof, header, ph, disclosed, indexes)


@needs_two_backends
def test_pairing_matches_py_ecc_reference() -> None:
    from identity.bbs._pyecc import PyEccBackend

    be = bbs.get_backend("py_ecc")
    assert isinstance(be, PyEccBackend)
    g1, g2 = be.g1_generator(), be.g2_generator()
    a, b = 0x1234567890ABCDEF, 0xFEDCBA0987654321
    good = [(be.g1_mul(g1, a), be.g2_mul(g2, b)), (be.g1_mul(g1, a * b), be.g2_neg(g2))]
    bad = [(be.g1_mul(g1, a), be.g2_mul(g2, b)), (be.g1_mul(g1, a * b + 1), be.g2_neg(g2))]
    assert be.pairing_product_is_one(good) is True
    assert be.pairing_product_is_one_reference(good) is True
    assert be.pairing_product_is_one(bad) is False
    assert be.pairing_product_is_one_reference(bad) is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_msm_matches_naive(backend: str) -> None:
    be = bbs.get_backend(backend)
    g = be.g1_generator()
    points = [be.g1_mul(g, 3 + i * 7919) for i in range(6)]
    scalars = [int.from_bytes(hashlib.sha256(bytes([i])).digest(), "big") for i in range(6)]
    expected = be.g1_identity()
    for p, k in zip(points, scalars, strict=True):
        expected = be.g1_add(expected, be.g1_mul(p, k))
    assert be.g1_eq(be.g1_msm(points, scalars), expected)
    assert be.g1_is_identity(be.g1_msm([g, g], [1, R - 1]))
    assert be.g1_is_identity(be.g1_msm([], []))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", bbs.SUITE_NAMES)
def test_two_proofs_share_no_bytes(backend: str, name: str) -> None:
    suite = bbs.suite_for(name, backend)
    sk = suite.keygen(hashlib.sha256(b"unlinkability").digest())
    pk = suite.sk_to_pk(sk)
    messages = [b"name=Ada", b"born=1815-12-10", b"city=London", b"role=citizen"]
    sig = suite.sign(sk, pk, b"hdr", messages)
    first = suite.proof_gen(pk, sig, b"hdr", b"ph", messages, [2])
    second = suite.proof_gen(pk, sig, b"hdr", b"ph", messages, [2])
    assert first != second
    assert len(first) == len(second)

    def chunks(proof: bytes) -> set[bytes]:
        return {proof[i : i + 16] for i in range(0, len(proof), 16)}

    assert chunks(first).isdisjoint(chunks(second))
    for proof in (first, second):
        assert suite.proof_verify(pk, proof, b"hdr", b"ph", [messages[2]], [2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trips(backend: str) -> None:
    suite = bbs.suite_for("BLS12_381_SHAKE_256", backend)
    sk = suite.keygen(b"\x07" * 32, b"info")
    pk = suite.sk_to_pk(sk)
    sig = suite.sign(sk, pk)
    assert len(sk) == 32 and len(pk) == 96 and len(sig) == 80
    assert suite.verify(pk, sig)
    assert suite.signature_to_octets(suite.octets_to_signature(sig)) == sig
    proof = suite.proof_gen(pk, sig)
    assert len(proof) == 272
    assert suite.proof_to_octets(suite.octets_to_proof(proof)) == proof
    assert suite.proof_verify(pk, proof)
    assert not suite.proof_verify(pk, proof, b"", b"", [b"x"], [0])
    # keys from a different key_info differ
    assert suite.keygen(b"\x07" * 32, b"other") != sk


def test_generators_cache_extends_prefix() -> None:
    suite = bbs.suite_for("BLS12_381_SHA_256", BACKENDS[0])
    api_id = suite.ciphersuite_id + b"TEST_ONLY_"
    short = suite.create_generators(2, api_id)
    longer = suite.create_generators(5, api_id)
    be = suite.backend
    assert [be.g1_to_bytes(p) for p in longer[:2]] == [be.g1_to_bytes(p) for p in short]
    assert len({be.g1_to_bytes(p) for p in longer}) == 5


def test_default_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    from identity.bbs.backend import default_backend_name

    monkeypatch.setenv("CIVITAS_BLS_BACKEND", "py_ecc")
    assert default_backend_name() == "py_ecc"
    monkeypatch.setenv("CIVITAS_BLS_BACKEND", "nope")
    with pytest.raises(ValueError, match="CIVITAS_BLS_BACKEND"):
        default_backend_name()
    monkeypatch.delenv("CIVITAS_BLS_BACKEND")
    assert default_backend_name() in BACKENDS
    with pytest.raises(ValueError, match="unknown BBS ciphersuite"):
        bbs.suite_for("BLS12_381_MD5")


@pytest.mark.skipif("arkworks" not in BACKENDS, reason="needs the arkworks backend")
def test_parallel_msm_and_async_pairing_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    from identity.bbs import _arkworks

    be = _arkworks.ArkworksBackend(parallel=True)
    monkeypatch.setattr(_arkworks, "PARALLEL_MSM_MIN_POINTS", 2)
    g = be.g1_generator()
    points = [be.g1_mul(g, 5 + i) for i in range(9)]
    scalars = [int.from_bytes(hashlib.sha256(bytes([i, 1])).digest(), "big") for i in range(9)]
    serial = _arkworks.ArkworksBackend(parallel=False)
    assert be.g1_eq(be.g1_msm(points, scalars), serial.g1_msm(points, scalars))
    h = be.g2_generator()
    assert be.pairing_product_is_one_async([(be.g1_mul(g, 3), h), (be.g1_mul(g, R - 3), h)])() is True
    assert be.pairing_product_is_one_async([(be.g1_mul(g, 3), h), (g, h)])() is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_verification(backend: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    suite = bbs.suite_for("BLS12_381_SHA_256", backend)
    sk = suite.keygen(hashlib.sha256(b"concurrency").digest())
    pk = suite.sk_to_pk(sk)
    messages = [b"a", b"b", b"c"]
    sig = suite.sign(sk, pk, b"", messages)
    proofs = [suite.proof_gen(pk, sig, b"", bytes([i]), messages, [1]) for i in range(4)]

    def check(i: int) -> bool:
        good = suite.proof_verify(pk, proofs[i % 4], b"", bytes([i % 4]), [b"b"], [1])
        bad = suite.proof_verify(pk, proofs[i % 4], b"", bytes([(i + 1) % 4]), [b"b"], [1])
        return good and not bad and suite.verify(pk, sig, b"", messages)

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(check, range(12 if backend == "arkworks" else 4)))


_EDGE_SCALARS = [0, 1, 127, 128, 129, 255, 256, (1 << 255) - 1, R - 1, R - 128, 128 << 248, R + 5]


@pytest.mark.skipif("arkworks" not in BACKENDS, reason="needs the arkworks backend")
@settings(max_examples=25, deadline=None)
@given(
    scalars=st.lists(
        st.one_of(st.sampled_from(_EDGE_SCALARS), st.integers(min_value=0, max_value=(1 << 256) - 1)),
        min_size=1,
        max_size=5,
    ),
    tabled=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_fixed_base_tables_match_plain_msm(scalars: list[int], tabled: list[bool]) -> None:
    """A multi-scalar multiplication gives the same point whether its bases have tables or not."""
    from identity.bbs import _arkworks

    be = _fixed_base_backend()
    assert len(be._tables) == 5  # type: ignore[attr-defined]
    plain = _arkworks.ArkworksBackend(parallel=False)
    bases = [p for p, t in zip(_TABLE_BASES, tabled, strict=True) if t][: len(scalars)]
    bases += [be.g1_mul(be.g1_generator(), 1000 + i) for i in range(len(scalars) - len(bases))]
    expected = plain.g1_identity()
    for p, k in zip(bases, scalars, strict=True):
        expected = plain.g1_add(expected, plain.g1_mul(p, k))
    assert be.g1_eq(be.g1_msm(bases, scalars), expected)
    assert be.g1_eq(plain.g1_msm(bases, scalars), expected)


_TABLE_BASES: list[object] = []


@functools.cache
def _fixed_base_backend() -> bbs.Backend:
    from identity.bbs import _arkworks

    be = _arkworks.ArkworksBackend(parallel=False)
    _TABLE_BASES.extend(be.g1_mul(be.g1_generator(), 7 + i) for i in range(5))
    for p in _TABLE_BASES:
        be.g1_precompute(p)
    return be


@pytest.mark.skipif("arkworks" not in BACKENDS, reason="needs the arkworks backend")
def test_fixed_base_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from identity.bbs import _arkworks

    monkeypatch.setattr(_arkworks, "MAX_FIXED_BASE_TABLES", 2)
    be = _arkworks.ArkworksBackend(parallel=False)
    points = [be.g1_mul(be.g1_generator(), 3 + i) for i in range(3)]
    for p in points:
        be.g1_precompute(p)
    assert len(be._tables) == 2
    # the untabled third base still multiplies correctly alongside the tabled ones
    got = be.g1_msm(points, [5, R - 1, 2**200 + 9])
    want = be.g1_mul(be.g1_generator(), (3 * 5 + 4 * (R - 1) + 5 * (2**200 + 9)) % R)
    assert be.g1_eq(got, want)


@pytest.mark.skipif("arkworks" not in BACKENDS, reason="needs the arkworks backend")
@pytest.mark.parametrize("count", [2, 3, 5, 8, 9])
def test_variable_base_msm_with_the_endomorphism_split(count: int) -> None:
    """Bases without tables (split with the GLV endomorphism for 3..8 points), the identity among them;
    every other scalar is shorter than the split's modulus, as a batch check's weights are."""
    from identity.bbs import _arkworks

    be = _arkworks.ArkworksBackend(parallel=False)
    g = be.g1_generator()
    points = [be.g1_mul(g, 11 + i) for i in range(count - 1)] + [be.g1_identity()]
    scalars = [R - 1 - i * 2**130 if i % 2 else 2**127 + i for i in range(count)]
    want = sum((11 + i) * scalars[i] for i in range(count - 1)) % R
    assert be.g1_eq(be.g1_msm(points, scalars), be.g1_mul(g, want))
    assert be.g1_is_identity(be.g1_msm(points[-1:] * 3, [5, 6, 7]))


def _pairing_checks(be: bbs.Backend) -> tuple[list[list[tuple[object, object]]], list[bool]]:
    """Checks e(a*G1, b*G2) * e(-(a*b)*G1, G2) == 1, every third one broken (its G1 side off by one)."""
    g, h = be.g1_generator(), be.g2_generator()
    keys = [be.g2_mul(h, 5), be.g2_mul(h, 7)]  # shared G2 points, as issuers' keys are
    checks, truth = [], []
    for i in range(9):
        a, b = 3 + i, (5, 7)[i % 2]
        off = 1 if i % 3 == 2 else 0
        checks.append([(be.g1_mul(g, a), keys[i % 2]), (be.g1_mul(g, (R - a * b + off) % R), h)])
        truth.append(off == 0)
    return checks, truth


@pytest.mark.parametrize("backend", BACKENDS)
def test_pairing_products_are_tested_together(backend: str) -> None:
    be = bbs.get_backend(backend)
    checks, truth = _pairing_checks(be)
    assert [be.pairing_product_is_one(c) for c in checks] == truth
    good = [c for c, ok in zip(checks, truth, strict=True) if ok]
    assert be.pairing_products_are_one(good) is True
    assert be.pairing_products_are_one(good[:1]) is True
    for bad in (c for c, ok in zip(checks, truth, strict=True) if not ok):
        assert be.pairing_products_are_one([*good, bad]) is False
        assert be.pairing_products_are_one([bad]) is False


def _hold_and_spy(
    monkeypatch: pytest.MonkeyPatch, be: bbs.Backend
) -> tuple[list[int], threading.Event, threading.Event]:
    """Single pairing checks on ``be`` set ``entered`` and wait for ``gate``; batch sizes are recorded."""
    batches: list[int] = []
    entered, gate = threading.Event(), threading.Event()
    real_batch, real_one = be.pairing_products_are_one, be.pairing_product_is_one

    def held_one(pairs: list[tuple[object, object]]) -> bool:
        entered.set()
        gate.wait(5)
        return real_one(pairs)

    def spy_batch(batch: list[list[tuple[object, object]]]) -> bool:
        batches.append(len(batch))
        return real_batch(batch)

    monkeypatch.setattr(be, "pairing_product_is_one", held_one)
    monkeypatch.setattr(be, "pairing_products_are_one", spy_batch)
    return batches, entered, gate


@pytest.mark.skipif("arkworks" not in BACKENDS, reason="needs the arkworks backend")
def test_concurrent_pairing_checks_are_batched_and_each_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    from identity.bbs import _arkworks

    be = _arkworks.ArkworksBackend(parallel=True)
    checks, truth = _pairing_checks(be)
    batches, _, gate = _hold_and_spy(monkeypatch, be)  # the first check is held: the others queue
    waits = [be.pairing_product_is_one_async(c) for c in checks]
    gate.set()
    assert [w() for w in waits] == truth  # the broken ones are found one by one after the batch fails
    assert batches and max(batches) > 1


@pytest.mark.skipif("arkworks" not in BACKENDS, reason="needs the arkworks backend")
def test_pairing_batches_wait_for_company_only_while_checks_arrive_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from identity.bbs import _arkworks

    be = _arkworks.ArkworksBackend(parallel=True)
    linger = 30.0  # far longer than a check takes: a batch that waited it out would time out below
    batcher = _arkworks._PairingBatcher(be, 2, linger)
    checks, truth = _pairing_checks(be)
    good = [c for c, ok in zip(checks, truth, strict=True) if ok]
    batches, entered, gate = _hold_and_spy(monkeypatch, be)
    gate.set()
    # a lone check (nothing arrived with the previous one): answered at once
    assert batcher.submit(good[0]).result(timeout=linger / 3) is True
    # the pairing thread is held on a lone check while two queue up: those two form one batch
    gate.clear()
    entered.clear()
    held = batcher.submit(good[1])
    assert entered.wait(5)
    queued = [batcher.submit(c) for c in good[2:4]]
    gate.set()
    assert [f.result(timeout=linger / 3) for f in (held, *queued)] == [True] * 3
    assert batches == [2]  # the sizes of the batches of several checks
    # checks now arrive together, so the next one waits for the one that follows it
    first = batcher.submit(good[4])
    time.sleep(0.05)
    second = batcher.submit(good[5])
    assert first.result(timeout=linger / 3) and second.result(timeout=linger / 3)
    assert batches == [2, 2]
