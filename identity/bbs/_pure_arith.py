"""Pure-Python BLS12-381 arithmetic on plain integers, for the py_ecc backend's hot paths.

* G1 in Jacobian coordinates ``(X, Y, Z)`` (identity: ``Z == 0``): add, double, windowed
  multi-scalar multiplication (Straus), subgroup check ``[r]P == O``.
* A multi-pairing product test: optimal ate Miller loops sharing one accumulator, with the
  G2 line coefficients precomputed per G2 point (and cached), then one final exponentiation.

Tower: Fp2 = Fp[u]/(u^2 + 1), Fp6 = Fp2[v]/(v^3 - (u + 1)), Fp12 = Fp6[w]/(w^2 - v).
Elements are nested tuples of ints. Lines are scaled by w^3 (an Fp4 element, which the final
exponentiation removes). The hard part of the final exponentiation uses
3 (p^4 - p^2 + 1) / r = (x - 1)^2 (x + p) (x^2 + p^2 - 1) + 3, so the value computed is the
cube of the reduced pairing; that does not change whether a product is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from .params import CURVE_ORDER, FIELD_MODULUS

P = FIELD_MODULUS
X_ABS = 0xD201000000010000  # |x|, x = -0xd201000000010000 is the BLS parameter (negative)

Fp2 = tuple[int, int]
Fp6 = tuple[Fp2, Fp2, Fp2]
Fp12 = tuple[Fp6, Fp6]
Jac = tuple[int, int, int]

INF: Jac = (1, 1, 0)
_X_BITS = bin(X_ABS)[3:]

# ------------------------------------------------------------------------------------- G1 --


def g1_double(p: Jac) -> Jac:
    X, Y, Z = p
    if Z == 0:
        return p
    A = X * X % P
    B = Y * Y % P
    C = B * B % P
    t = X + B
    D = 2 * (t * t - A - C) % P
    E = 3 * A % P
    F = E * E % P
    X3 = (F - 2 * D) % P
    return X3, (E * (D - X3) - 8 * C) % P, 2 * Y * Z % P


def g1_add(p: Jac, q: Jac) -> Jac:
    X1, Y1, Z1 = p
    X2, Y2, Z2 = q
    if Z1 == 0:
        return q
    if Z2 == 0:
        return p
    Z1Z1 = Z1 * Z1 % P
    Z2Z2 = Z2 * Z2 % P
    U1 = X1 * Z2Z2 % P
    U2 = X2 * Z1Z1 % P
    S1 = Y1 * Z2 * Z2Z2 % P
    S2 = Y2 * Z1 * Z1Z1 % P
    H = (U2 - U1) % P
    rr = 2 * (S2 - S1) % P
    if H == 0:
        if rr == 0:
            return g1_double(p)
        return INF
    I = 4 * H * H % P  # noqa: E741
    J = H * I % P
    V = U1 * I % P
    X3 = (rr * rr - J - 2 * V) % P
    Y3 = (rr * (V - X3) - 2 * S1 * J) % P
    t = Z1 + Z2
    Z3 = (t * t - Z1Z1 - Z2Z2) * H % P
    return X3, Y3, Z3


def g1_neg(p: Jac) -> Jac:
    return p[0], (-p[1]) % P, p[2]


def g1_add_affine(p: Jac, q: tuple[int, int]) -> Jac:
    """p + q for an affine, non-identity q (mixed addition)."""
    X1, Y1, Z1 = p
    x2, y2 = q
    if Z1 == 0:
        return x2, y2, 1
    Z1Z1 = Z1 * Z1 % P
    H = (x2 * Z1Z1 - X1) % P
    rr = 2 * (y2 * Z1 * Z1Z1 - Y1) % P
    if H == 0:
        if rr == 0:
            return g1_double(p)
        return INF
    HH = H * H % P
    I = 4 * HH % P  # noqa: E741
    J = H * I % P
    V = X1 * I % P
    X3 = (rr * rr - J - 2 * V) % P
    Y3 = (rr * (V - X3) - 2 * Y1 * J) % P
    t = Z1 + H
    return X3, Y3, (t * t - Z1Z1 - HH) % P


def _to_affine_batch(points: Sequence[Jac]) -> list[tuple[int, int]]:
    """Normalize non-identity Jacobian points with one field inversion (Montgomery's trick)."""
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % P)
    inv = pow(prefix[-1], -1, P)
    out: list[tuple[int, int]] = [(0, 0)] * len(points)
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        zi = inv * prefix[i] % P
        inv = inv * z % P
        zi2 = zi * zi % P
        out[i] = (x * zi2 % P, y * zi2 * zi % P)
    return out


def g1_msm(points: Sequence[Jac], scalars: Sequence[int]) -> Jac:
    """sum(scalars[i] * points[i]): 4-bit windows, shared doublings, affine tables, mixed adds."""
    jac_tables: list[Jac] = []
    ks: list[int] = []
    acc = INF
    for pt, k in zip(points, scalars, strict=True):
        k %= CURVE_ORDER
        if k == 0 or pt[2] == 0:
            continue
        if k == 1:
            acc = g1_add(acc, pt)
            continue
        entries = [pt, g1_double(pt)]
        for _ in range(13):
            entries.append(g1_add(entries[-1], pt))
        if any(e[2] == 0 for e in entries):  # a point of small order: no affine table
            acc = g1_add(acc, _mul_plain(pt, k))
            continue
        jac_tables.extend(entries)
        ks.append(k)
    if not ks:
        return acc
    flat = _to_affine_batch(jac_tables)
    tables = [[(0, 0), *flat[15 * i : 15 * (i + 1)]] for i in range(len(ks))]
    top = max(k.bit_length() for k in ks)
    result = INF
    for shift in range((top - 1) // 4 * 4, -1, -4):
        if result[2]:
            result = g1_double(g1_double(g1_double(g1_double(result))))
        for table, k in zip(tables, ks, strict=True):
            d = (k >> shift) & 15
            if d:
                result = g1_add_affine(result, table[d])
    return g1_add(result, acc)


def _mul_plain(p: Jac, k: int) -> Jac:
    result = INF
    for bit in bin(k)[2:]:
        result = g1_double(result)
        if bit == "1":
            result = g1_add(result, p)
    return result


def _mul_abs_x(p: Jac) -> Jac:
    """[|x|]P by double-and-add (|x| has Hamming weight 6)."""
    result = p
    for bit in _X_BITS:
        result = g1_double(result)
        if bit == "1":
            result = g1_add(result, p)
    return result


def g1_in_subgroup(p: Jac) -> bool:
    """[r]P == O, using r = x^4 - x^2 + 1: [r]P = [x^2]([x^2]P - P) + P."""
    if p[2] == 0:
        return True
    x2p = _mul_abs_x(_mul_abs_x(p))
    r_p = g1_add(_mul_abs_x(_mul_abs_x(g1_add(x2p, g1_neg(p)))), p)
    return r_p[2] == 0


# ---------------------------------------------------------------------------------- fields --


def f2_add(a: Fp2, b: Fp2) -> Fp2:
    return (a[0] + b[0]) % P, (a[1] + b[1]) % P


def f2_sub(a: Fp2, b: Fp2) -> Fp2:
    return (a[0] - b[0]) % P, (a[1] - b[1]) % P


def f2_neg(a: Fp2) -> Fp2:
    return (-a[0]) % P, (-a[1]) % P


def f2_mul(a: Fp2, b: Fp2) -> Fp2:
    a0, a1 = a
    b0, b1 = b
    t0 = a0 * b0
    t1 = a1 * b1
    return (t0 - t1) % P, ((a0 + a1) * (b0 + b1) - t0 - t1) % P


def f2_sqr(a: Fp2) -> Fp2:
    a0, a1 = a
    return (a0 + a1) * (a0 - a1) % P, 2 * a0 * a1 % P


def f2_mul_xi(a: Fp2) -> Fp2:
    """Multiply by xi = u + 1."""
    a0, a1 = a
    return (a0 - a1) % P, (a0 + a1) % P


def f2_inv(a: Fp2) -> Fp2:
    a0, a1 = a
    t = pow(a0 * a0 + a1 * a1, -1, P)
    return a0 * t % P, (-a1 * t) % P


def f2_conj(a: Fp2) -> Fp2:
    return a[0], (-a[1]) % P


def f2_pow(a: Fp2, e: int) -> Fp2:
    result: Fp2 = (1, 0)
    base = a
    while e:
        if e & 1:
            result = f2_mul(result, base)
        base = f2_sqr(base)
        e >>= 1
    return result


def f6_add(a: Fp6, b: Fp6) -> Fp6:
    return f2_add(a[0], b[0]), f2_add(a[1], b[1]), f2_add(a[2], b[2])


def f6_sub(a: Fp6, b: Fp6) -> Fp6:
    return f2_sub(a[0], b[0]), f2_sub(a[1], b[1]), f2_sub(a[2], b[2])


def f6_neg(a: Fp6) -> Fp6:
    return f2_neg(a[0]), f2_neg(a[1]), f2_neg(a[2])


def f6_mul(a: Fp6, b: Fp6) -> Fp6:
    a0, a1, a2 = a
    b0, b1, b2 = b
    t0 = f2_mul(a0, b0)
    t1 = f2_mul(a1, b1)
    t2 = f2_mul(a2, b2)
    c0 = f2_add(t0, f2_mul_xi(f2_sub(f2_sub(f2_mul(f2_add(a1, a2), f2_add(b1, b2)), t1), t2)))
    c1 = f2_add(f2_sub(f2_sub(f2_mul(f2_add(a0, a1), f2_add(b0, b1)), t0), t1), f2_mul_xi(t2))
    c2 = f2_add(f2_sub(f2_sub(f2_mul(f2_add(a0, a2), f2_add(b0, b2)), t0), t2), t1)
    return c0, c1, c2


def f6_mul_v(a: Fp6) -> Fp6:
    return f2_mul_xi(a[2]), a[0], a[1]


def f6_inv(a: Fp6) -> Fp6:
    a0, a1, a2 = a
    c0 = f2_sub(f2_sqr(a0), f2_mul_xi(f2_mul(a1, a2)))
    c1 = f2_sub(f2_mul_xi(f2_sqr(a2)), f2_mul(a0, a1))
    c2 = f2_sub(f2_sqr(a1), f2_mul(a0, a2))
    t = f2_add(f2_mul(a0, c0), f2_mul_xi(f2_add(f2_mul(a2, c1), f2_mul(a1, c2))))
    ti = f2_inv(t)
    return f2_mul(c0, ti), f2_mul(c1, ti), f2_mul(c2, ti)


F12_ONE: Fp12 = (((1, 0), (0, 0), (0, 0)), ((0, 0), (0, 0), (0, 0)))


def f12_mul(a: Fp12, b: Fp12) -> Fp12:
    a0, a1 = a
    b0, b1 = b
    t0 = f6_mul(a0, b0)
    t1 = f6_mul(a1, b1)
    c0 = f6_add(t0, f6_mul_v(t1))
    c1 = f6_sub(f6_sub(f6_mul(f6_add(a0, a1), f6_add(b0, b1)), t0), t1)
    return c0, c1


def f12_sqr(a: Fp12) -> Fp12:
    a0, a1 = a
    t = f6_mul(a0, a1)
    c0 = f6_sub(f6_sub(f6_mul(f6_add(a0, a1), f6_add(a0, f6_mul_v(a1))), t), f6_mul_v(t))
    return c0, f6_add(t, t)


def f12_conj(a: Fp12) -> Fp12:
    return a[0], f6_neg(a[1])


def f12_inv(a: Fp12) -> Fp12:
    a0, a1 = a
    t = f6_inv(f6_sub(f6_mul(a0, a0), f6_mul_v(f6_mul(a1, a1))))
    return f6_mul(a0, t), f6_neg(f6_mul(a1, t))


_XI: Fp2 = (1, 1)
# gamma_i = xi^(i (p - 1) / 6): Frobenius twists the coefficient of w^i by gamma_i.
_GAMMA = [f2_pow(_XI, i * (P - 1) // 6) for i in range(6)]


def f12_frob(a: Fp12) -> Fp12:
    (c0, c2, c4), (c1, c3, c5) = a
    g = _GAMMA
    return (
        (f2_conj(c0), f2_mul(f2_conj(c2), g[2]), f2_mul(f2_conj(c4), g[4])),
        (f2_mul(f2_conj(c1), g[1]), f2_mul(f2_conj(c3), g[3]), f2_mul(f2_conj(c5), g[5])),
    )


def _f6_mul_by_01(a: Fp6, b0: Fp2, b1: Fp2) -> Fp6:
    """a * (b0 + b1 v)."""
    x0, x1, x2 = a
    return (
        f2_add(f2_mul(x0, b0), f2_mul_xi(f2_mul(x2, b1))),
        f2_add(f2_mul(x0, b1), f2_mul(x1, b0)),
        f2_add(f2_mul(x1, b1), f2_mul(x2, b0)),
    )


def _f6_mul_by_fp_v(a: Fp6, c: int) -> Fp6:
    """a * (c v) for c in Fp."""
    (x00, x01), (x10, x11), (x20, x21) = a
    return f2_mul_xi((x20 * c % P, x21 * c % P)), (x00 * c % P, x01 * c % P), (x10 * c % P, x11 * c % P)


def _mul_by_line(f: Fp12, mu: Fp2, lam_xp: Fp2, yp: int) -> Fp12:
    """f * (mu + lam_xp v + yp v w), i.e. f times a sparse line value."""
    a0, a1 = f
    return (
        f6_add(_f6_mul_by_01(a0, mu, lam_xp), f6_mul_v(_f6_mul_by_fp_v(a1, yp))),
        f6_add(_f6_mul_by_fp_v(a0, yp), _f6_mul_by_01(a1, mu, lam_xp)),
    )


def _fp4_square(a: Fp2, b: Fp2) -> tuple[Fp2, Fp2]:
    t0 = f2_sqr(a)
    t1 = f2_sqr(b)
    c0 = f2_add(f2_mul_xi(t1), t0)
    c1 = f2_sub(f2_sub(f2_sqr(f2_add(a, b)), t0), t1)
    return c0, c1


def f12_cyclotomic_sqr(f: Fp12) -> Fp12:
    """Squaring in the cyclotomic subgroup (Granger-Scott), for elements after the easy part."""
    (z0, z4, z3), (z2, z1, z5) = f
    t0, t1 = _fp4_square(z0, z1)
    z0 = f2_sub(t0, z0)
    z0 = f2_add(f2_add(z0, z0), t0)
    z1 = f2_add(t1, z1)
    z1 = f2_add(f2_add(z1, z1), t1)
    t0, t1 = _fp4_square(z2, z3)
    t2, t3 = _fp4_square(z4, z5)
    z4 = f2_sub(t0, z4)
    z4 = f2_add(f2_add(z4, z4), t0)
    z5 = f2_add(t1, z5)
    z5 = f2_add(f2_add(z5, z5), t1)
    t0 = f2_mul_xi(t3)
    z2 = f2_add(t0, z2)
    z2 = f2_add(f2_add(z2, z2), t0)
    z3 = f2_sub(t2, z3)
    z3 = f2_add(f2_add(z3, z3), t2)
    return (z0, z4, z3), (z2, z1, z5)


def _cyclotomic_exp_x(a: Fp12) -> Fp12:
    """a^x for the (negative) BLS parameter x, a in the cyclotomic subgroup."""
    result = a
    for bit in bin(X_ABS)[3:]:
        result = f12_cyclotomic_sqr(result)
        if bit == "1":
            result = f12_mul(result, a)
    return f12_conj(result)


def final_exponentiation(f: Fp12) -> Fp12:
    """f^(3 (p^12 - 1) / r)."""
    t = f12_mul(f12_conj(f), f12_inv(f))  # f^(p^6 - 1)
    t = f12_mul(f12_frob(f12_frob(t)), t)  # ^(p^2 + 1)
    a = f12_mul(_cyclotomic_exp_x(t), f12_conj(t))  # t^(x - 1)
    a = f12_mul(_cyclotomic_exp_x(a), f12_conj(a))  # t^((x - 1)^2)
    b = f12_mul(_cyclotomic_exp_x(a), f12_frob(a))  # ^(x + p)
    c = f12_mul(f12_mul(_cyclotomic_exp_x(_cyclotomic_exp_x(b)), f12_frob(f12_frob(b))), f12_conj(b))
    return f12_mul(c, f12_mul(f12_sqr(t), t))


# --------------------------------------------------------------------------------- pairing --

_LOOP_BITS = bin(X_ABS)[3:]


@lru_cache(maxsize=256)
def g2_line_coefficients(qx: Fp2, qy: Fp2) -> tuple[tuple[Fp2, Fp2], ...]:
    """(lambda, mu = lambda * x_T - y_T) of every Miller-loop line for the affine G2 point Q."""
    lines: list[tuple[Fp2, Fp2]] = []
    tx, ty = qx, qy
    for bit in _LOOP_BITS:
        lam = f2_mul(f2_mul((3, 0), f2_sqr(tx)), f2_inv(f2_add(ty, ty)))
        lines.append((lam, f2_sub(f2_mul(lam, tx), ty)))
        nx = f2_sub(f2_sqr(lam), f2_add(tx, tx))
        ty = f2_sub(f2_mul(lam, f2_sub(tx, nx)), ty)
        tx = nx
        if bit == "1":
            lam = f2_mul(f2_sub(qy, ty), f2_inv(f2_sub(qx, tx)))
            lines.append((lam, f2_sub(f2_mul(lam, tx), ty)))
            nx = f2_sub(f2_sub(f2_sqr(lam), tx), qx)
            ty = f2_sub(f2_mul(lam, f2_sub(tx, nx)), ty)
            tx = nx
    return tuple(lines)


def miller_loop_product(pairs: Sequence[tuple[tuple[int, int], tuple[Fp2, Fp2]]]) -> Fp12:
    """prod f_{|x|,Q}(P) over affine (P, Q) pairs, conjugated for the negative x."""
    prepared = [(px, py, g2_line_coefficients(qx, qy)) for (px, py), (qx, qy) in pairs]
    f = F12_ONE
    step = 0
    for i, bit in enumerate(_LOOP_BITS):
        if i:
            f = f12_sqr(f)
        for px, py, lines in prepared:
            lam, mu = lines[step]
            f = _mul_by_line(f, mu, f2_neg((lam[0] * px % P, lam[1] * px % P)), py)
        step += 1
        if bit == "1":
            for px, py, lines in prepared:
                lam, mu = lines[step]
                f = _mul_by_line(f, mu, f2_neg((lam[0] * px % P, lam[1] * px % P)), py)
            step += 1
    return f12_conj(f)


def pairing_product_is_one(pairs: Sequence[tuple[tuple[int, int], tuple[Fp2, Fp2]]]) -> bool:
    """prod e(P_i, Q_i) == 1 for affine, non-identity P_i in G1 and Q_i in G2."""
    if not pairs:
        return True
    return final_exponentiation(miller_loop_product(pairs)) == F12_ONE
