"""The BLS12-381 backend interface used by the BBS core, and backend selection.

A backend owns the representation of G1/G2 points (opaque to the core: ``G1`` and
``G2`` below are whatever the backend uses). Scalars are always Python ``int`` in
``[0, r)``. Decoding (``g1_from_bytes`` / ``g2_from_bytes``) returns ``None`` unless the
octets are the canonical compressed encoding of a point on the curve, in the prime
order subgroup and different from the identity.

Two implementations: ``arkworks`` (``py_arkworks_bls12381``, native, the default when
importable) and ``py_ecc`` (pure Python reference). ``CIVITAS_BLS_BACKEND=py_ecc|arkworks``
forces one; it is read once, in :func:`default_backend_name`.
"""

from __future__ import annotations

import abc
import os
import secrets
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from .hashing import ExpandMessage

G1 = Any  # backend-specific G1 point
G2 = Any  # backend-specific G2 point

BACKEND_ENV = "CIVITAS_BLS_BACKEND"
BACKEND_NAMES = ("arkworks", "py_ecc")


class Backend(abc.ABC):
    """Group operations on BLS12-381 needed by BBS."""

    name: str

    # -- constants ---------------------------------------------------------------------------
    @abc.abstractmethod
    def g1_generator(self) -> G1: ...

    @abc.abstractmethod
    def g2_generator(self) -> G2: ...

    @abc.abstractmethod
    def g1_identity(self) -> G1: ...

    # -- G1 ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def g1_add(self, a: G1, b: G1) -> G1: ...

    @abc.abstractmethod
    def g1_neg(self, a: G1) -> G1: ...

    @abc.abstractmethod
    def g1_mul(self, p: G1, k: int) -> G1: ...

    @abc.abstractmethod
    def g1_msm(self, points: Sequence[G1], scalars: Sequence[int]) -> G1:
        """sum(points[i] * scalars[i]); the lists have equal length."""

    def g1_precompute(self, p: G1) -> None:
        """Hint that ``p`` (a generator) is a base of many later :meth:`g1_msm` calls.

        A backend may build a fixed-base table for it; results never change. Default: nothing.
        """
        return None

    @abc.abstractmethod
    def g1_is_identity(self, p: G1) -> bool: ...

    @abc.abstractmethod
    def g1_eq(self, a: G1, b: G1) -> bool: ...

    @abc.abstractmethod
    def g1_to_bytes(self, p: G1) -> bytes:
        """48-byte compressed encoding (identity encodes as 0xc0 || 0^47)."""

    @abc.abstractmethod
    def g1_from_bytes(self, data: bytes) -> G1 | None:
        """Canonical, on-curve, in-subgroup, non-identity point, else None."""

    @abc.abstractmethod
    def is_g1(self, p: object) -> bool:
        """True when ``p`` is a G1 point object of this backend."""

    # -- G2 ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def g2_mul(self, p: G2, k: int) -> G2: ...

    @abc.abstractmethod
    def g2_neg(self, p: G2) -> G2: ...

    @abc.abstractmethod
    def g2_is_identity(self, p: G2) -> bool: ...

    @abc.abstractmethod
    def g2_to_bytes(self, p: G2) -> bytes:
        """96-byte compressed encoding."""

    @abc.abstractmethod
    def g2_from_bytes(self, data: bytes) -> G2 | None:
        """Canonical, on-curve, in-subgroup, non-identity point, else None."""

    @abc.abstractmethod
    def is_g2(self, p: object) -> bool: ...

    # -- hashing and pairing -----------------------------------------------------------------
    @abc.abstractmethod
    def map_to_g1(self, u0: int, u1: int) -> G1:
        """clear_cofactor(map_to_curve(u0) + map_to_curve(u1)) (RFC 9380, SSWU + 11-isogeny)."""

    def hash_to_curve_g1(self, msg: bytes, dst: bytes, expand: ExpandMessage) -> G1:
        """RFC 9380 hash_to_curve into G1 with the given expand_message (XMD or XOF)."""
        from .hashing import hash_to_field_fp

        u0, u1 = hash_to_field_fp(expand, msg, dst, 2)
        return self.map_to_g1(u0, u1)

    @abc.abstractmethod
    def pairing_product_is_one(self, pairs: Sequence[tuple[G1, G2]]) -> bool:
        """True iff prod e(g1_i, g2_i) is the identity of GT."""

    def pairing_products_are_one(self, checks: Sequence[Sequence[tuple[G1, G2]]]) -> bool:
        """True iff every check's pairing product is one, tested as one random linear combination.

        Each check is raised to its own random 128-bit exponent and the G1 sides of equal G2
        points are summed, so n checks cost one pairing product plus small multi-scalar
        multiplications. All points are in the prime-order groups (decoding checks that), so a
        set holding a false check passes with probability at most 2^-128; a False says only that
        some check is false.
        """
        if len(checks) == 1:
            return self.pairing_product_is_one(checks[0])
        by_g2: dict[int, tuple[G2, list[G1], list[int]]] = {}
        for pairs in checks:
            rho = secrets.randbits(128) | 1
            for p, q in pairs:
                _, ps, ks = by_g2.setdefault(id(q), (q, [], []))
                ps.append(p)
                ks.append(rho)
        return self.pairing_product_is_one([(self.g1_msm(ps, ks), q) for q, ps, ks in by_g2.values()])

    def pairing_product_is_one_async(self, pairs: Sequence[tuple[G1, G2]]) -> Callable[[], bool]:
        """Start :meth:`pairing_product_is_one`; the returned callable waits for the answer.

        Backends whose native code releases the GIL run it on a worker thread; the default
        computes it before returning.
        """
        result = self.pairing_product_is_one(pairs)
        return lambda: result


def default_backend_name() -> str:
    """The backend to use: ``CIVITAS_BLS_BACKEND`` if set, else arkworks when importable."""
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced:
        if forced not in BACKEND_NAMES:
            raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(BACKEND_NAMES)}, got {forced!r}")
        return forced
    try:
        import py_arkworks_bls12381  # noqa: F401
    except ImportError:
        return "py_ecc"
    return "arkworks"


@cache
def get_backend(name: str) -> Backend:
    """The (shared) backend instance called ``name``."""
    if name == "arkworks":
        from ._arkworks import ArkworksBackend

        return ArkworksBackend()
    if name == "py_ecc":
        from ._pyecc import PyEccBackend

        return PyEccBackend()
    raise ValueError(f"unknown BLS12-381 backend {name!r}; known: {', '.join(BACKEND_NAMES)}")


def available_backends() -> list[str]:
    """Names of the backends that can be loaded here."""
    names = []
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
        except ImportError:
            continue
        names.append(name)
    return names
