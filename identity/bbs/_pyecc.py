"""Pure-Python reference backend over ``py_ecc.optimized_bls12_381``.

Points are py_ecc's projective triples; encoding, decoding and hash-to-curve maps are
py_ecc's. Decoding adds the checks py_ecc leaves out (subgroup membership, non-identity,
canonical encoding). Multi-scalar multiplication, the G1 subgroup check and the pairing
product run on plain integers (:mod:`._pure_arith`): one shared Miller loop with cached G2
lines and a single final exponentiation.
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc.bls.point_compression import compress_G1, compress_G2, decompress_G1, decompress_G2
from py_ecc.bls.typing import G1Compressed, G2Compressed
from py_ecc.fields import optimized_bls12_381_FQ as FQ
from py_ecc.fields import optimized_bls12_381_FQ2 as FQ2
from py_ecc.fields import optimized_bls12_381_FQ12 as FQ12
from py_ecc.optimized_bls12_381.optimized_clear_cofactor import multiply_clear_cofactor_G1
from py_ecc.optimized_bls12_381.optimized_curve import G1 as _G1
from py_ecc.optimized_bls12_381.optimized_curve import G2 as _G2
from py_ecc.optimized_bls12_381.optimized_curve import Z1, add, b, b2, is_inf, is_on_curve, multiply, neg
from py_ecc.optimized_bls12_381.optimized_curve import eq as _eq
from py_ecc.optimized_bls12_381.optimized_pairing import final_exponentiate, miller_loop
from py_ecc.optimized_bls12_381.optimized_swu import iso_map_G1, optimized_swu_G1

from . import _pure_arith as pa
from .backend import G1, G2, Backend
from .params import CURVE_ORDER, FIELD_MODULUS, OCTET_G2_POINT_LENGTH, OCTET_POINT_LENGTH

_P = FIELD_MODULUS


def _in_subgroup_g2(p: G2) -> bool:
    return bool(is_inf(multiply(p, CURVE_ORDER)))


def _to_jac(p: G1) -> pa.Jac:
    """py_ecc homogeneous (x, y, z) -> Jacobian integers (x z, y z^2, z)."""
    x, y, z = p[0].n, p[1].n, p[2].n
    return x * z % _P, y * z * z % _P, z


def _from_jac(j: pa.Jac) -> G1:
    X, Y, Z = j
    if Z == 0:
        return Z1
    return FQ(X * Z), FQ(Y), FQ(Z * Z * Z)


def _affine_g1(p: G1) -> tuple[int, int]:
    zi = pow(p[2].n, -1, _P)
    return p[0].n * zi % _P, p[1].n * zi % _P


def _affine_g2(q: G2) -> tuple[pa.Fp2, pa.Fp2]:
    zi = pa.f2_inv((int(q[2].coeffs[0]), int(q[2].coeffs[1])))
    x = pa.f2_mul((int(q[0].coeffs[0]), int(q[0].coeffs[1])), zi)
    y = pa.f2_mul((int(q[1].coeffs[0]), int(q[1].coeffs[1])), zi)
    return x, y


class PyEccBackend(Backend):
    name = "py_ecc"

    def g1_generator(self) -> G1:
        return _G1

    def g2_generator(self) -> G2:
        return _G2

    def g1_identity(self) -> G1:
        return Z1

    def g1_add(self, a: G1, b_: G1) -> G1:
        return add(a, b_)

    def g1_neg(self, a: G1) -> G1:
        return neg(a)

    def g1_mul(self, p: G1, k: int) -> G1:
        return _from_jac(pa.g1_msm([_to_jac(p)], [k]))

    def g1_msm(self, points: Sequence[G1], scalars: Sequence[int]) -> G1:
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        return _from_jac(pa.g1_msm([_to_jac(p) for p in points], scalars))

    def g1_is_identity(self, p: G1) -> bool:
        return bool(is_inf(p))

    def g1_eq(self, a: G1, b_: G1) -> bool:
        if is_inf(a) or is_inf(b_):
            return bool(is_inf(a) and is_inf(b_))
        return bool(_eq(a, b_))

    def g1_to_bytes(self, p: G1) -> bytes:
        return int(compress_G1(p)).to_bytes(OCTET_POINT_LENGTH, "big")

    def g1_from_bytes(self, data: bytes) -> G1 | None:
        if len(data) != OCTET_POINT_LENGTH:
            return None
        try:
            p = decompress_G1(G1Compressed(int.from_bytes(data, "big")))
        except ValueError:
            return None
        if is_inf(p) or not is_on_curve(p, b) or not pa.g1_in_subgroup(_to_jac(p)):
            return None
        if self.g1_to_bytes(p) != data:
            return None
        return p

    def is_g1(self, p: object) -> bool:
        return isinstance(p, tuple) and len(p) == 3 and isinstance(p[0], FQ)

    def g2_mul(self, p: G2, k: int) -> G2:
        return multiply(p, k % CURVE_ORDER)

    def g2_neg(self, p: G2) -> G2:
        return neg(p)

    def g2_is_identity(self, p: G2) -> bool:
        return bool(is_inf(p))

    def g2_to_bytes(self, p: G2) -> bytes:
        z1, z2 = compress_G2(p)
        return int(z1).to_bytes(48, "big") + int(z2).to_bytes(48, "big")

    def g2_from_bytes(self, data: bytes) -> G2 | None:
        if len(data) != OCTET_G2_POINT_LENGTH:
            return None
        try:
            p = decompress_G2(
                G2Compressed((int.from_bytes(data[:48], "big"), int.from_bytes(data[48:], "big")))
            )
        except ValueError:
            return None
        if is_inf(p) or not is_on_curve(p, b2) or not _in_subgroup_g2(p):
            return None
        if self.g2_to_bytes(p) != data:
            return None
        return p

    def is_g2(self, p: object) -> bool:
        return isinstance(p, tuple) and len(p) == 3 and isinstance(p[0], FQ2)

    def map_to_g1(self, u0: int, u1: int) -> G1:
        q0 = iso_map_G1(*optimized_swu_G1(FQ(u0)))
        q1 = iso_map_G1(*optimized_swu_G1(FQ(u1)))
        return multiply_clear_cofactor_G1(add(q0, q1))

    def pairing_product_is_one(self, pairs: Sequence[tuple[G1, G2]]) -> bool:
        affine = [(_affine_g1(p), _affine_g2(q)) for p, q in pairs if not (is_inf(p) or is_inf(q))]
        return pa.pairing_product_is_one(affine)

    def pairing_product_is_one_reference(self, pairs: Sequence[tuple[G1, G2]]) -> bool:
        """The same test with py_ecc's own Miller loop and final exponentiation (slow; for tests)."""
        f = FQ12.one()
        for p, q in pairs:
            if is_inf(p) or is_inf(q):
                continue
            f = f * miller_loop(q, p, final_exponentiate=False)
        return bool(final_exponentiate(f) == FQ12.one())
