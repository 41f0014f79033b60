"""Native backend over ``py_arkworks_bls12381`` (arkworks, Rust).

Two speed-ups on top of the native calls:

* Fixed-base tables for long-lived points (the suite's P1 and message generators, see
  :meth:`ArkworksBackend.g1_precompute`): a scalar is recoded into 33 signed base-256 digits that
  index the table rows directly, so ``k*P`` is a sum of 33 table entries: about 2.5x cheaper than
  arkworks' multi-scalar multiplication for the 10-20 bases of a typical signature.
* The Rust calls release the GIL, so a pairing product can run on the pairing thread while the
  caller computes other values (:meth:`ArkworksBackend.pairing_product_is_one_async`); checks that
  queue up there from concurrent verifications are answered as one batch
  (:meth:`Backend.pairing_products_are_one`). A large multi-scalar multiplication is split across
  two threads.
"""

from __future__ import annotations

import os
import queue
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

PARALLEL_MSM_MIN_POINTS = 64  # split a multi-scalar multiplication over two threads from this size
PAIRING_BATCH_MAX = 64  # pairing checks answered together at most
# After a batch of several checks (verifications are arriving together), the pairing thread waits
# up to this long for more before starting the next one: one more check in a batch saves a whole
# pairing product. After a lone check it starts at once, so a lone verifier never waits.
PAIRING_BATCH_LINGER_S = 0.002
# Fixed-base tables: 33 rows of 256 points (about 1.5 MB each); at most this many per backend.
MAX_FIXED_BASE_TABLES = 32
_DIGITS = 33  # signed base-256 digits of a scalar < 2^255 (the top one is at most 1)
# Adding 128 to every base-256 digit turns the unsigned bytes of k + _OFFSET into the signed
# digits of k (each in [-128, 127]) without a carry loop.
_OFFSET = sum(128 << (8 * j) for j in range(_DIGITS))


# GLV: phi(x, y) = (BETA * x, y) equals LAMBDA * P on G1, with LAMBDA = z^2 - 1 (z the BLS
# parameter) about 2^128, so k*P = k1*P + k2*phi(P) with k1, k2 < 2^128 halves the scalar length.
_FIELD_P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
_BETA = 0x1A0111EA397FE699EC02408663D4DE85AA0D857D89759AD4897D29650FB85F9B409427EB4F49FFFD8BFD00000000AAAC
_LAMBDA = 0xD201000000010000**2 - 1
GLV_MSM_POINTS = range(3, 9)  # where splitting beats arkworks' own multi-scalar multiplication


def _phi(p: G1Point) -> G1Point:
    xy = bytes(p.to_xy_bytes_be())
    x = int.from_bytes(xy[:48], "big") * _BETA % _FIELD_P
    return G1Point.from_xy_bytes_unchecked_be(x.to_bytes(48, "big") + xy[48:])


def _scalar(k: int) -> Scalar:
    return Scalar.from_be_bytes_mod_order((k % CURVE_ORDER).to_bytes(32, "big"))


def _fixed_base_table(p: G1Point) -> list[list[G1Point]]:
    """rows[j][b] = (b - 128) * 256^j * P for b in 0..255: one entry per signed digit."""
    rows: list[list[G1Point]] = []
    base = p
    for _ in range(_DIGITS):
        multiples = [base]  # d * base for d in 1..128
        for _ in range(127):
            multiples.append(multiples[-1] + base)
        rows.append([-m for m in reversed(multiples)] + [G1Point.identity()] + multiples[:127])
        base = multiples[-1] + multiples[-1]  # 256 * base
    return rows


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


class _PairingBatcher:
    """Answers queued pairing checks on one thread, all those waiting at once as one batch.

    A lone check costs what it did; while a check runs, the ones queued behind it (concurrent
    verifications) are tested together by :meth:`Backend.pairing_products_are_one`, and one by
    one only if that batch fails. While checks keep arriving together, each batch also waits up
    to ``linger_s`` for more (see ``PAIRING_BATCH_LINGER_S``).
    """

    def __init__(self, backend: Backend, max_batch: int, linger_s: float) -> None:
        self._backend = backend
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._queue: queue.SimpleQueue[tuple[Sequence[tuple[G1, G2]], Future[bool]]] = queue.SimpleQueue()
        self._pid = -1
        self._lock = threading.Lock()

    def submit(self, pairs: Sequence[tuple[G1, G2]]) -> Future[bool]:
        with self._lock:
            if self._pid != os.getpid():  # (re)start the thread in this process, e.g. after a fork
                self._queue = queue.SimpleQueue()
                threading.Thread(
                    target=self._run, args=(self._queue,), name="bls12-381-pairing", daemon=True
                ).start()
                self._pid = os.getpid()
        future: Future[bool] = Future()
        self._queue.put((pairs, future))
        return future

    def _run(self, jobs: queue.SimpleQueue[tuple[Sequence[tuple[G1, G2]], Future[bool]]]) -> None:
        together = False  # whether the last batch held more than one check
        while True:
            batch = [jobs.get()]
            deadline = time.monotonic() + (self._linger_s if together else 0.0)
            while len(batch) < self._max_batch:
                wait = deadline - time.monotonic()
                try:
                    batch.append(jobs.get(timeout=wait) if wait > 0 else jobs.get_nowait())
                except queue.Empty:
                    break
            together = len(batch) > 1
            try:
                checks = [pairs for pairs, _ in batch]
                if len(batch) > 1 and self._backend.pairing_products_are_one(checks):
                    results = [True] * len(batch)
                else:
                    results = [self._backend.pairing_product_is_one(pairs) for pairs in checks]
            except Exception as exc:  # never leave a verifier waiting
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), ok in zip(batch, results, strict=True):
                future.set_result(ok)


class ArkworksBackend(Backend):
    name = "arkworks"

    def __init__(self, parallel: bool | None = None) -> None:
        cpus = os.cpu_count() or 1
        self.parallel = cpus > 1 if parallel is None else parallel
        self._pool = _Pool(max(2, min(cpus, 8)))
        self._pairings = _PairingBatcher(self, PAIRING_BATCH_MAX, PAIRING_BATCH_LINGER_S)
        self._g1 = G1Point()
        self._g2 = G2Point()
        self._g1_id = G1Point.identity()
        self._g2_id = G2Point.identity()
        # id(point) -> (point, table); the point is kept so its id cannot be reused
        self._tables: dict[int, tuple[G1Point, list[list[G1Point]]]] = {}
        self._tables_lock = threading.Lock()

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

    def g1_precompute(self, p: G1) -> None:
        if id(p) in self._tables or len(self._tables) >= MAX_FIXED_BASE_TABLES:
            return
        table = _fixed_base_table(p)
        with self._tables_lock:
            if len(self._tables) < MAX_FIXED_BASE_TABLES:
                self._tables.setdefault(id(p), (p, table))

    def g1_msm(self, points: Sequence[G1], scalars: Sequence[int]) -> G1:
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        terms: list[G1Point] = []
        rest_points: list[G1Point] = []
        rest_ints: list[int] = []
        tables = self._tables
        for p, k in zip(points, scalars, strict=True):
            entry = tables.get(id(p))
            if entry is None or entry[0] is not p:
                rest_points.append(p)
                rest_ints.append(k % CURVE_ORDER)
                continue
            # the bytes of k + _OFFSET index the rows directly (each is a signed digit + 128)
            terms += map(
                list.__getitem__, entry[1], ((k % CURVE_ORDER) + _OFFSET).to_bytes(_DIGITS, "little")
            )
        acc = sum(terms, self._g1_id)
        if rest_points:
            acc = acc + self._msm(rest_points, rest_ints)
        return acc

    def _msm(self, pts: list[G1Point], ks: list[int]) -> G1Point:
        n = len(pts)
        if n == 1:
            return pts[0] * _scalar(ks[0])
        if n in GLV_MSM_POINTS:
            halves: list[G1Point] = []
            scalars: list[Scalar] = []
            for p, k in zip(pts, ks, strict=True):
                if p == self._g1_id:  # no affine coordinates to map
                    continue
                k2, k1 = divmod(k, _LAMBDA)
                if k2:
                    halves += (p, _phi(p))
                    scalars += (_scalar(k1), _scalar(k2))
                else:  # a short scalar (e.g. a batch check's 128-bit weight) needs no split
                    halves.append(p)
                    scalars.append(_scalar(k1))
            return G1Point.multiexp_unchecked(halves, scalars)
        scs = [_scalar(k) for k in ks]
        if self.parallel and n >= PARALLEL_MSM_MIN_POINTS:
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
            # checked decompression: on the curve and in the prime-order subgroup (one native call
            # is cheaper than decompressing unchecked and then testing the subgroup)
            p = G1Point.from_compressed_bytes(bytes(data))
        except (ValueError, TypeError, OverflowError):
            return None
        if p == self._g1_id:
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
            p = G2Point.from_compressed_bytes(bytes(data))  # checked: on the curve and in G2
        except (ValueError, TypeError, OverflowError):
            return None
        if p == self._g2_id:
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
        return self._pairings.submit(list(pairs)).result
