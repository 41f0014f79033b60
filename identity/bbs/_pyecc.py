"""Pure-Python reference backend over ``py_ecc.optimized_bls12_381``.

Points are py_ecc's projective triples. Decoding adds the checks py_ecc leaves out
(subgroup membership, non-identity, canonical encoding); a pairing product multiplies
Miller loops and runs one final exponentiation.
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

from .backend import G1, G2, Backend
from .params import CURVE_ORDER, OCTET_G2_POINT_LENGTH, OCTET_POINT_LENGTH


def _in_subgroup(p: G1 | G2) -> bool:
    return bool(is_inf(multiply(p, CURVE_ORDER)))


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
        return multiply(p, k % CURVE_ORDER)

    def g1_msm(self, points: Sequence[G1], scalars: Sequence[int]) -> G1:
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        acc = Z1
        for p, k in zip(points, scalars, strict=True):
            acc = add(acc, multiply(p, k % CURVE_ORDER))
        return acc

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
        if is_inf(p) or not is_on_curve(p, b) or not _in_subgroup(p):
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
        if is_inf(p) or not is_on_curve(p, b2) or not _in_subgroup(p):
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
        f = FQ12.one()
        for p, q in pairs:
            if is_inf(p) or is_inf(q):
                continue
            f = f * miller_loop(q, p, final_exponentiate=False)
        return bool(final_exponentiate(f) == FQ12.one())
