"""RFC 9162 Merkle tree hashing, proofs and their verification; pure.

leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right); the empty tree's
root is SHA-256(""). Proof generation works over any source of *perfect subtree* hashes
(`perfect(level, index)` = root of leaves [index * 2^level, (index + 1) * 2^level)), so the store
can serve proofs from cached interior nodes instead of rehashing every leaf. `Frontier` is the
compact range (one hash per set bit of the tree size) that lets a log append leaves and compute its
root in O(log n) per leaf.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and, like the transparency-dev Go
verifier, rejects a consistency proof from an empty tree. Every hash (leaf hash, proof element,
root) must be exactly 32 bytes; anything else is rejected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MemoryTree",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256

PerfectHash = Callable[[int, int], bytes]  # (level, index) -> hash of a perfect subtree


class ProofError(ValueError):
    """A proof cannot be produced or verified (bad sizes, wrong length, mismatch)."""


# Copying a context that already holds the domain prefix costs less than starting a new one.
_LEAF_PREFIX = _sha256(b"\x00")
_NODE_PREFIX = _sha256(b"\x01")


def leaf_hash(leaf: bytes) -> bytes:
    h = _LEAF_PREFIX.copy()
    h.update(leaf)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _pair_hashes(layer: list[bytes]) -> list[bytes]:
    """`node_hash` of each consecutive pair of `layer` (an odd last hash is left out)."""
    joined = b"".join(layer)
    copy = _NODE_PREFIX.copy
    out: list[bytes] = []
    for k in range(0, len(joined) - 2 * HASH_SIZE + 1, 2 * HASH_SIZE):
        h = copy()
        h.update(joined[k : k + 2 * HASH_SIZE])
        out.append(h.digest())
    return out


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(start: int, end: int, perfect: PerfectHash) -> bytes:
    """MTH of leaves [start, end); `start` must be aligned as RFC 9162's recursion produces it."""
    n = end - start
    if n <= 0:
        raise ProofError("empty range")
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        if start % n:
            raise ProofError("unaligned perfect subtree")
        return perfect(level, start >> level)
    k = _largest_power_of_two_below(n)
    return node_hash(subtree_root(start, start + k, perfect), subtree_root(start + k, end, perfect))


def inclusion_proof(index: int, size: int, perfect: PerfectHash) -> list[bytes]:
    """RFC 9162 PATH(index, D[size]): the audit path of leaf `index` in the tree of `size` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            path.append(subtree_root(start + k, end, perfect))
            end = start + k
        else:
            path.append(subtree_root(start, start + k, perfect))
            start += k
            m -= k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, perfect: PerfectHash) -> list[bytes]:
    """RFC 9162 PROOF(old_size, D[new_size]); empty when the sizes are equal."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(subtree_root(start, end, perfect))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            proof.append(subtree_root(start + k, end, perfect))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k, perfect))
            start += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def _check_hash(name: str, h: bytes) -> None:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        raise ProofError(f"{name} must be {HASH_SIZE} bytes")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root implied by a leaf hash and its audit path."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf)
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        _check_hash("proof hash", p)
        if sn == 0:
            raise ProofError("proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is too short")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff `proof` shows leaf hash `leaf` at `index` in the tree of `size` with `root`."""
    try:
        _check_hash("root", root)
        return root_from_inclusion_proof(leaf, index, size, proof) == bytes(root)
    except ProofError:
        return False


def _consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    for p in proof:
        _check_hash("proof hash", p)
    if old_size < 0 or new_size < old_size:
        raise ProofError("new size is smaller than old size")
    if old_size == new_size:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty")
        if bytes(old_root) != bytes(new_root):
            raise ProofError("sizes are equal but the roots differ")
        return
    if old_size == 0:
        raise ProofError("a consistency proof from an empty tree is meaningless")
    if not proof:
        raise ProofError("empty proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is too short")
    if fr != bytes(old_root) or sr != bytes(new_root):
        raise ProofError("roots do not match the proof")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """True iff `proof` shows the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`)."""
    try:
        _consistency(old_size, new_size, proof, old_root, new_root)
    except ProofError:
        return False
    return True


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (RFC 9162 2.1.1)."""
    f = Frontier()
    for h in leaf_hashes:
        f.append(h)
    return f.root()


class Frontier:
    """Compact range of a growing tree: roots of its maximal perfect subtrees, left to right."""

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != size.bit_count():
            raise ProofError("frontier does not match the tree size")

    def append(self, leaf: bytes, on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        """Add one leaf hash; `on_node(level, index, hash)` sees every perfect subtree it completes."""
        s = self.size
        h = leaf
        level = 0
        hashes = self.hashes
        while (s >> level) & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            level += 1
            if on_node is not None:
                on_node(level, s >> level, h)
        hashes.append(h)
        self.size = s + 1

    def extend(self, leaves: Sequence[bytes], min_level: int = 1) -> list[tuple[int, int, bytes]]:
        """Add many leaf hashes, one tree level at a time (the same tree as `append` one by one).

        Returns `(level, index, hash)` of every perfect subtree completed at `min_level` or above.
        """
        s = self.size
        n = len(leaves)
        if n == 0:
            return []
        levels = [k for k in range(s.bit_length() - 1, -1, -1) if s >> k & 1]  # of self.hashes
        old = dict(zip(levels, self.hashes, strict=True))
        kept: dict[int, bytes] = {}
        completed: list[tuple[int, int, bytes]] = []
        layer = list(leaves)
        level = 0
        start = s  # index of layer[0] on its level
        while layer:
            if start & 1:  # the first node's left sibling is the old frontier's node on this level
                layer.insert(0, old.pop(level))
                start -= 1
            if len(layer) & 1:  # the last node waits for its right sibling
                kept[level] = layer[-1]
            layer = _pair_hashes(layer)
            level += 1
            start >>= 1
            if level >= min_level:
                completed.extend((level, start + k, h) for k, h in enumerate(layer))
        kept.update(old)  # old nodes above the highest level reached stay as they are
        size = s + n
        self.hashes = [kept[k] for k in range(size.bit_length() - 1, -1, -1) if size >> k & 1]
        self.size = size
        return completed

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        if len(data) != HASH_SIZE * size.bit_count():
            raise ProofError("frontier does not match the tree size")
        return cls(size, [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)])


class MemoryTree:
    """A tree over in-memory leaf hashes (tests, witnesses, small logs)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.leaves: list[bytes] = list(leaf_hashes)
        self._nodes: dict[tuple[int, int], bytes] = {}

    def append(self, leaf: bytes) -> None:
        self.leaves.append(leaf)

    def perfect(self, level: int, index: int) -> bytes:
        if level == 0:
            return self.leaves[index]
        key = (level, index)
        h = self._nodes.get(key)
        if h is None:
            if (index + 1) << level > len(self.leaves):
                raise ProofError("subtree is not complete")
            h = node_hash(self.perfect(level - 1, 2 * index), self.perfect(level - 1, 2 * index + 1))
            self._nodes[key] = h
        return h

    def root(self, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        return EMPTY_ROOT if size == 0 else subtree_root(0, size, self.perfect)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self.perfect)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(old_size, new_size, self.perfect)
