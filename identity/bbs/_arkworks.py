"""Native backend over ``py_arkworks_bls12381`` (arkworks, Rust).

The Rust calls release the GIL, so on a multi-core host a large multi-scalar multiplication is
split across two threads and a pairing product can run while the caller computes other values
(:meth:`ArkworksBackend.pairing_product_is_one_async`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from .backend import G1, G2, Backend
from .hashing import ExpandMessage, expand_message_xmd
from .params import CURVE_ORDER, OCTET_G2_POINT_LENGTH, OCTET_POINT_LENGTH

T = TypeVar("T")

PARALLEL_MSM_MIN_POINTS = 64  # split above this size whenever the pool is enabled
PARALLEL_MSM_MIN_POINTS_IDLE = 8  # split above this size when another core is idle
_LOAD_TTL_S = 1.0


def _scalar(k: int) -> Scalar:
    return Scalar.from_be_bytes_mod_order((k % CURVE_ORDER).to_bytes(32, "big"))


class _IdleCores:
    """Whether the host has a spare core, from the 1-minute load average (re-read at most once a second)."""

    def __init__(self, cpus: int) -> None:
        self._cpus = cpus
        self._checked_at = -_LOAD_TTL_S
        self._spare = False

    def spare(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= _LOAD_TTL_S:
            try:
                load = os.getloadavg()[0]
            except OSError:
                load = 0.0
            self._spare = load < self._cpus - 0.5  # the caller itself accounts for about 1
            self._checked_at = now
        return self._spare


class _Pool:
    """A lazily created thread pool (recreated after fork) that refuses work when saturated.

    ``submit`` returns None when every worker is busy, so callers compute inline instead of
    queueing behind other requests.
    """

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pid = -1
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight = 0

    def _get(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        if self._executor is None or self._pid != pid:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="bls12-381")
            self._pid = pid
            self._in_flight = 0
        return self._executor

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T] | None:
        with self._lock:
            executor = self._get()
            if self._in_flight >= self._workers:
                return None
            self._in_flight += 1
        future = executor.submit(fn, *args)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object) -> None:
        with self._lock:
            self._in_flight -= 1


class ArkworksBackend(Backend):
    name = "arkworks"

    def __init__(self, parallel: bool | None = None) -> None:
        cpus = os.cpu_count() or 1
        self.parallel = cpus > 1 if parallel is None else parallel
        self._pool = _Pool(max(2, min(cpus, 8)))
        self._idle = _IdleCores(cpus)
        self._g1 = G1Point()
        self._g2 = G2Point()
        self._g1_id = G1Point.identity()
        self._g2_id = G2Point.identity()

    def g1_generator(self) -> G1:
        return self._g1

    def g2_generator(self) -> G2:
        return self._g2

    def g1_identity(self) -> G1:
        return self._g1_id

    def g1_add(self, a: G1, b: G1) -> G1:
        return a + b

    def g1_neg(self, a: G1) -> G1:
        return -a

    def g1_mul(self, p: G1, k: int) -> G1:
        return p * _scalar(k)

    def g1_msm(self, points: Sequence[G1], scalars: Sequence[int]) -> G1:
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        if not points:
            return self._g1_id
        pts = list(points)
        scs = [_scalar(k) for k in scalars]
        n = len(pts)
        if self.parallel and (
            n >= PARALLEL_MSM_MIN_POINTS or (n >= PARALLEL_MSM_MIN_POINTS_IDLE and self._idle.spare())
        ):
            half = n // 2
            upper = self._pool.submit(G1Point.multiexp_unchecked, pts[half:], scs[half:])
            if upper is not None:
                return G1Point.multiexp_unchecked(pts[:half], scs[:half]) + upper.result()
        return G1Point.multiexp_unchecked(pts, scs)

    def g1_is_identity(self, p: G1) -> bool:
        return bool(p == self._g1_id)

    def g1_eq(self, a: G1, b: G1) -> bool:
        return bool(a == b)

    def g1_to_bytes(self, p: G1) -> bytes:
        return bytes(p.to_compressed_bytes())

    def g1_from_bytes(self, data: bytes) -> G1 | None:
        if len(data) != OCTET_POINT_LENGTH:
            return None
        try:
            # decompression solves for y, so the point is on the curve; the subgroup check follows
            p = G1Point.from_compressed_bytes_unchecked(bytes(data))
        except (ValueError, TypeError, OverflowError):
            return None
        if p == self._g1_id or not p.is_in_subgroup():
            return None
        if bytes(p.to_compressed_bytes()) != data:  # canonical encodings only
            return None
        return p

    def is_g1(self, p: object) -> bool:
        return isinstance(p, G1Point)

    def g2_mul(self, p: G2, k: int) -> G2:
        return p * _scalar(k)

    def g2_neg(self, p: G2) -> G2:
        return -p

    def g2_is_identity(self, p: G2) -> bool:
        return bool(p == self._g2_id)

    def g2_to_bytes(self, p: G2) -> bytes:
        return bytes(p.to_compressed_bytes())

    def g2_from_bytes(self, data: bytes) -> G2 | None:
        if len(data) != OCTET_G2_POINT_LENGTH:
            return None
        try:
            p = G2Point.from_compressed_bytes(bytes(data))
        except (ValueError, TypeError, OverflowError):
            return None
        if p == self._g2_id or not p.is_in_subgroup():
            return None
        if bytes(p.to_compressed_bytes()) != data:
            return None
        return p

    def is_g2(self, p: object) -> bool:
        return isinstance(p, G2Point)

    def map_to_g1(self, u0: int, u1: int) -> G1:
        return G1Point.map_from_fp_be(u0.to_bytes(48, "big")) + G1Point.map_from_fp_be(u1.to_bytes(48, "big"))

    def hash_to_curve_g1(self, msg: bytes, dst: bytes, expand: ExpandMessage) -> G1:
        if expand is expand_message_xmd:
            if len(dst) > 255:
                raise ValueError("domain separation tag longer than 255 bytes")
            return G1Point.hash_to_curve(bytes(msg), bytes(dst))
        return super().hash_to_curve_g1(msg, dst, expand)

    def pairing_product_is_one(self, pairs: Sequence[tuple[G1, G2]]) -> bool:
        return bool(GT.pairing_check([p for p, _ in pairs], [q for _, q in pairs]))

    def pairing_product_is_one_async(self, pairs: Sequence[tuple[G1, G2]]) -> Callable[[], bool]:
        if not self.parallel:
            return super().pairing_product_is_one_async(pairs)
        future = self._pool.submit(self.pairing_product_is_one, list(pairs))
        if future is None:
            return super().pairing_product_is_one_async(pairs)
        return future.result
