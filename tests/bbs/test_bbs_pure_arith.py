"""The integer-level BLS12-381 arithmetic behind the pure-Python backend."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from identity.bbs import _pure_arith as pa
from identity.bbs.params import CURVE_ORDER, FIELD_MODULUS

P = FIELD_MODULUS
X = -0xD201000000010000


def _random_f12(rng: random.Random) -> pa.Fp12:
    def f2() -> pa.Fp2:
        return rng.randrange(P), rng.randrange(P)

    return (f2(), f2(), f2()), (f2(), f2(), f2())


def _point_with_x(x: int) -> pa.Jac | None:
    rhs = (x**3 + 4) % P
    if pow(rhs, (P - 1) // 2, P) != 1:
        return None
    return x, pow(rhs, (P + 1) // 4, P), 1


def _generator() -> pa.Jac:
    from py_ecc.optimized_bls12_381.optimized_curve import G1

    x, y, z = G1
    return x.n, y.n, z.n


def _affine(p: pa.Jac) -> tuple[int, int]:
    zi = pow(p[2], -1, P)
    return p[0] * zi * zi % P, p[1] * zi * zi * zi % P


def test_curve_parameters() -> None:
    assert X**4 - X**2 + 1 == CURVE_ORDER
    # the hard-part decomposition used by the final exponentiation
    assert 3 * (P**4 - P**2 + 1) // CURVE_ORDER == (X - 1) ** 2 * (X + P) * (X**2 + P**2 - 1) + 3


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_tower_identities(seed: int) -> None:
    rng = random.Random(seed)
    f = _random_f12(rng)
    assert pa.f12_mul(f, pa.f12_inv(f)) == pa.F12_ONE
    assert pa.f12_sqr(f) == pa.f12_mul(f, f)
    # after the easy part, f is in the cyclotomic subgroup: Granger-Scott squaring applies
    t = pa.f12_mul(pa.f12_conj(f), pa.f12_inv(f))
    t = pa.f12_mul(pa.f12_frob(pa.f12_frob(t)), t)
    assert pa.f12_cyclotomic_sqr(t) == pa.f12_sqr(t)
    assert pa.f12_mul(t, pa.f12_conj(t)) == pa.F12_ONE
    mu = (rng.randrange(P), rng.randrange(P))
    lam = (rng.randrange(P), rng.randrange(P))
    yp = rng.randrange(P)
    line: pa.Fp12 = ((mu, lam, (0, 0)), ((0, 0), (yp, 0), (0, 0)))
    assert pa._mul_by_line(f, mu, lam, yp) == pa.f12_mul(f, line)


def test_frobenius_is_pth_power_on_fp2() -> None:
    rng = random.Random(7)
    a: pa.Fp2 = (rng.randrange(P), rng.randrange(P))
    assert pa.f2_pow(a, P) == pa.f2_conj(a)


def test_subgroup_check_rejects_points_outside_g1() -> None:
    g = _generator()
    assert pa.g1_in_subgroup(g)
    assert pa.g1_in_subgroup(pa.g1_msm([g], [123456789]))
    tested = 0
    for x in range(1, 120):
        point = _point_with_x(x)
        if point is None:
            continue
        tested += 1
        assert not pa.g1_in_subgroup(point)
    assert tested > 20


@settings(max_examples=10, deadline=None)
@given(scalars=st.lists(st.integers(0, 2**256), min_size=1, max_size=5))
def test_msm_matches_double_and_add(scalars: list[int]) -> None:
    g = _generator()
    points = [pa.g1_msm([g], [i + 2]) for i in range(len(scalars))]
    expected = pa.INF
    for p, k in zip(points, scalars, strict=True):
        expected = pa.g1_add(expected, pa._mul_plain(p, k % CURVE_ORDER))
    got = pa.g1_msm(points, scalars)
    assert (got[2] == 0) == (expected[2] == 0)
    if got[2]:
        assert _affine(got) == _affine(expected)


def test_msm_edge_cases() -> None:
    g = _generator()
    assert pa.g1_msm([], [])[2] == 0
    assert pa.g1_msm([g, g], [1, CURVE_ORDER - 1])[2] == 0
    assert _affine(pa.g1_msm([g, pa.INF], [1, 5])) == _affine(g)
    assert _affine(pa.g1_add_affine(g, _affine(g))) == _affine(pa.g1_double(g))
    assert pa.g1_add_affine(g, _affine(pa.g1_neg(g)))[2] == 0
