"""BBS core operations (draft-irtf-cfrg-bbs-signatures-09/-10) over a pluggable BLS12-381 backend.

This is the hazmat layer: the public, validating interface is in :mod:`identity.bbs.interface`
(``suite.sign`` etc.). Extensions (blind BBS, pseudonyms) build on the operations below, which
are methods of :class:`Ciphersuite` and follow the draft's names, argument order and semantics.

Representations
    * scalars: Python ``int`` in ``[0, r)`` (``CURVE_ORDER``);
    * points: the backend's own G1/G2 objects (``suite.backend``: ``g1_add``, ``g1_mul``,
      ``g1_msm``, ``g1_neg``, ``g1_to_bytes``, ``g1_from_bytes``, ``pairing_product_is_one`` ...);
    * ``pk`` arguments are the 96-byte octets (the draft hashes them), ``sk`` in core ops is an int;
    * INVALID is signalled by raising :class:`InvalidError` (a ``ValueError``); the ``core_verify``
      and ``core_proof_verify`` operations return ``False`` instead.

Ciphersuite fields
    ``name``, ``ciphersuite_id``, ``api_id`` (ciphersuite_id || "H2G_HM2S_"), ``P1``, ``BP2``,
    ``backend``.

Operations (methods; ``api_id`` is always explicit where the draft parameterises by it)
    ``expand_message(msg, dst, length)``, ``hash_to_scalar(msg, dst)``,
    ``hash_to_curve_g1(msg, dst)`` (any DST; e.g. a pseudonym context point),
    ``create_generators(count, api_id)`` (cached per api_id, extended on demand),
    ``messages_to_scalars(messages, api_id)``,
    ``calculate_domain(pk, Q1, H_points, header, api_id)``,
    ``core_sign(sk, pk, generators, header, message_scalars, api_id) -> bytes``,
    ``core_verify(pk, signature, generators, header, message_scalars, api_id) -> bool``
    (``core_verify_pairs`` stops before the pairing and returns its (G1, G2) pairs),
    ``core_proof_gen(pk, signature, generators, header, ph, message_scalars, disclosed_indexes,
    api_id, random_scalars=None) -> bytes``,
    ``core_proof_verify(pk, proof, generators, header, ph, disclosed_message_scalars,
    disclosed_indexes, api_id) -> bool``,
    ``proof_init(pk, signature, generators, random_scalars, header, message_scalars,
    undisclosed_indexes, api_id) -> ProofInitResult``,
    ``proof_finalize(init_res, challenge, e_value, random_scalars, undisclosed_messages) -> bytes``
    (``proof_finalize_values`` returns the :class:`Proof` tuple instead),
    ``proof_verify_init(pk, proof, generators, header, disclosed_messages, disclosed_indexes,
    api_id) -> ProofInitResult``,
    ``proof_challenge_calculate(init_res, disclosed_messages, disclosed_indexes, ph, api_id, *,
    extra_points=(), octets_before_ph=b"", octets_after_ph=b"") -> int``
    (the keyword arguments cover the pseudonym and blind-proof challenge variants:
    extra points are serialized between ``T2`` and ``domain``),
    ``calculate_random_scalars(count)``, ``seeded_random_scalars(seed, dst, count)``,
    ``serialize(elements)`` (points, ``int`` scalars, :class:`U64` integers, raw ``bytes``),
    ``signature_to_octets`` / ``octets_to_signature``, ``proof_to_octets`` / ``octets_to_proof``,
    ``octets_to_pubkey`` (validated and LRU-cached per backend), ``i2osp`` / ``os2ip``.

Value types: :class:`Signature` ``(A, e)``, :class:`ProofInitResult`
``(Abar, Bbar, D, T1, T2, domain)``, :class:`Proof`
``(Abar, Bbar, D, e_hat, r1_hat, r3_hat, commitments, challenge)``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from .backend import G1, G2, Backend
from .hashing import ExpandMessage
from .params import CURVE_ORDER, EXPAND_LEN, OCTET_POINT_LENGTH, OCTET_SCALAR_LENGTH

R = CURVE_ORDER
MAX_MESSAGES = 1024
"""Largest number of signed messages accepted by the public interface."""
MAX_GENERATORS = 4 * MAX_MESSAGES + 64
"""Largest generator count create_generators will compute for one api_id."""
SIGNATURE_LENGTH = OCTET_POINT_LENGTH + OCTET_SCALAR_LENGTH
PUBLIC_KEY_LENGTH = 96
SECRET_KEY_LENGTH = OCTET_SCALAR_LENGTH
PROOF_LENGTH_FLOOR = 3 * OCTET_POINT_LENGTH + 4 * OCTET_SCALAR_LENGTH

RandomScalars = Callable[[int], list[int]]


class InvalidError(ValueError):
    """An operation of the draft returned INVALID (bad encoding, length, index or value)."""


class U64(int):
    """A non-negative integer that :meth:`Ciphersuite.serialize` encodes as I2OSP(n, 8)."""


class Signature(NamedTuple):
    A: Any
    e: int


class ProofInitResult(NamedTuple):
    Abar: Any
    Bbar: Any
    D: Any
    T1: Any
    T2: Any
    domain: int


class Proof(NamedTuple):
    Abar: Any
    Bbar: Any
    D: Any
    e_hat: int
    r1_hat: int
    r3_hat: int
    commitments: tuple[int, ...]
    challenge: int


def i2osp(value: int, length: int) -> bytes:
    """Integer to big-endian octets of exactly ``length`` bytes."""
    if value < 0 or value >= 1 << (8 * length):
        raise InvalidError(f"integer does not fit in {length} octets")
    return value.to_bytes(length, "big")


def os2ip(octets: bytes) -> int:
    """Big-endian octets to integer."""
    return int.from_bytes(octets, "big")


def _inv(x: int) -> int:
    return pow(x, -1, R)


@lru_cache(maxsize=1024)
def _decode_pubkey(backend: Backend, pk: bytes) -> Any:
    return backend.g2_from_bytes(pk)


@dataclass
class _GeneratorStream:
    """Cached output of create_generators for one (seed, dsts): the running v and the points."""

    v: bytes
    points: list[Any] = field(default_factory=list)
    octets: list[bytes] = field(default_factory=list)


class Ciphersuite:
    """A BBS ciphersuite (hash-to-curve suite + BLS12-381 backend) and its core operations."""

    def __init__(self, name: str, ciphersuite_id: bytes, expand: ExpandMessage, backend: Backend) -> None:
        self.name = name
        self.ciphersuite_id = ciphersuite_id
        self.api_id = ciphersuite_id + b"H2G_HM2S_"
        self.backend = backend
        self._expand = expand
        self._lock = threading.Lock()
        self._streams: dict[tuple[bytes, bytes, bytes], _GeneratorStream] = {}
        self._p1: Any = None
        self.BP2 = backend.g2_generator()
        self._neg_bp2 = backend.g2_neg(self.BP2)

    def __repr__(self) -> str:
        return f"<BBS ciphersuite {self.name} on {self.backend.name}>"

    # ----------------------------------------------------------------------------- hashing --
    def expand_message(self, msg: bytes, dst: bytes, length: int) -> bytes:
        """The suite's expand_message (XMD:SHA-256 or XOF:SHAKE-256)."""
        return self._expand(msg, dst, length)

    def hash_to_scalar(self, msg: bytes, dst: bytes) -> int:
        """hash_to_scalar: OS2IP(expand_message(msg, dst, 48)) mod r."""
        if len(dst) > 255:
            raise InvalidError("hash_to_scalar: dst longer than 255 bytes")
        return os2ip(self._expand(msg, dst, EXPAND_LEN)) % R

    def hash_to_curve_g1(self, msg: bytes, dst: bytes) -> Any:
        """RFC 9380 hash_to_curve to G1 with this suite's expand_message and any DST."""
        return self.backend.hash_to_curve_g1(msg, dst, self._expand)

    # -------------------------------------------------------------------------- generators --
    def _generators(
        self, count: int, generator_seed: bytes, seed_dst: bytes, generator_dst: bytes
    ) -> _GeneratorStream:
        if count < 0 or count > MAX_GENERATORS:
            raise InvalidError(f"create_generators: count must be in [0, {MAX_GENERATORS}]")
        key = (generator_seed, seed_dst, generator_dst)
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                stream = _GeneratorStream(v=self._expand(generator_seed, seed_dst, EXPAND_LEN))
                self._streams[key] = stream
            while len(stream.points) < count:
                i = len(stream.points) + 1
                stream.v = self._expand(stream.v + i2osp(i, 8), seed_dst, EXPAND_LEN)
                point = self.hash_to_curve_g1(stream.v, generator_dst)
                self.backend.g1_precompute(point)
                stream.points.append(point)
                stream.octets.append(self.backend.g1_to_bytes(point))
            return stream

    def create_generators(self, count: int, api_id: bytes) -> list[Any]:
        """create_generators(count, api_id): the first ``count`` generators for ``api_id``."""
        stream = self._generators(
            count,
            api_id + b"MESSAGE_GENERATOR_SEED",
            api_id + b"SIG_GENERATOR_SEED_",
            api_id + b"SIG_GENERATOR_DST_",
        )
        return stream.points[:count]

    @property
    def P1(self) -> Any:
        """The suite's fixed G1 point P1 (create_generators with the BP seed, count 1)."""
        if self._p1 is None:
            api = self.ciphersuite_id + b"H2G_HM2S_"
            stream = self._generators(
                1,
                api + b"BP_MESSAGE_GENERATOR_SEED",
                api + b"SIG_GENERATOR_SEED_",
                api + b"SIG_GENERATOR_DST_",
            )
            self._p1 = stream.points[0]
        return self._p1

    def messages_to_scalars(self, messages: Sequence[bytes], api_id: bytes) -> list[int]:
        """messages_to_scalars: hash_to_scalar of each message with api_id || MAP_MSG_TO_SCALAR_AS_HASH_."""
        dst = api_id + b"MAP_MSG_TO_SCALAR_AS_HASH_"
        return [self.hash_to_scalar(bytes(m), dst) for m in messages]

    # ------------------------------------------------------------------------ serialization --
    def serialize(self, elements: Iterable[object]) -> bytes:
        """serialize: G1/G2 points compressed, U64 as 8 octets, int as a 32-octet scalar, bytes raw."""
        out = []
        be = self.backend
        for el in elements:
            if isinstance(el, U64):
                out.append(i2osp(int(el), 8))
            elif isinstance(el, int):
                if el < 0 or el >= R:
                    raise InvalidError("serialize: scalar out of range")
                out.append(el.to_bytes(OCTET_SCALAR_LENGTH, "big"))
            elif isinstance(el, bytes | bytearray):
                out.append(bytes(el))
            elif be.is_g1(el):
                out.append(be.g1_to_bytes(el))
            elif be.is_g2(el):
                out.append(be.g2_to_bytes(el))
            else:
                raise InvalidError(f"serialize: unsupported element {type(el).__name__}")
        return b"".join(out)

    def i2osp(self, value: int, length: int) -> bytes:
        return i2osp(value, length)

    def os2ip(self, octets: bytes) -> int:
        return os2ip(octets)

    def signature_to_octets(self, signature: Signature) -> bytes:
        """signature_to_octets: A (48 octets) || e (32 octets)."""
        return self.backend.g1_to_bytes(signature.A) + i2osp(signature.e, OCTET_SCALAR_LENGTH)

    def octets_to_signature(self, octets: bytes) -> Signature:
        """octets_to_signature, with point and scalar validation."""
        if len(octets) != SIGNATURE_LENGTH:
            raise InvalidError(f"signature must be {SIGNATURE_LENGTH} octets")
        A = self.backend.g1_from_bytes(bytes(octets[:OCTET_POINT_LENGTH]))
        if A is None:
            raise InvalidError("signature point A is not a valid non-identity G1 point")
        e = os2ip(octets[OCTET_POINT_LENGTH:])
        if e == 0 or e >= R:
            raise InvalidError("signature scalar e out of range")
        return Signature(A, e)

    def proof_to_octets(self, proof: Proof) -> bytes:
        """proof_to_octets: Abar || Bbar || D || e^ || r1^ || r3^ || m^_j... || c."""
        be = self.backend
        scalars = (proof.e_hat, proof.r1_hat, proof.r3_hat, *proof.commitments, proof.challenge)
        return (
            be.g1_to_bytes(proof.Abar)
            + be.g1_to_bytes(proof.Bbar)
            + be.g1_to_bytes(proof.D)
            + b"".join(i2osp(s, OCTET_SCALAR_LENGTH) for s in scalars)
        )

    def octets_to_proof(self, octets: bytes) -> Proof:
        """octets_to_proof, with point (subgroup, non-identity) and scalar ([1, r-1]) validation."""
        n = len(octets)
        if n < PROOF_LENGTH_FLOOR or (n - PROOF_LENGTH_FLOOR) % OCTET_SCALAR_LENGTH:
            raise InvalidError("proof length is not 3 points + (4 + U) scalars")
        octets = bytes(octets)
        points = []
        for i in range(3):
            p = self.backend.g1_from_bytes(octets[i * OCTET_POINT_LENGTH : (i + 1) * OCTET_POINT_LENGTH])
            if p is None:
                raise InvalidError("proof point is not a valid non-identity G1 point")
            points.append(p)
        scalars = []
        for index in range(3 * OCTET_POINT_LENGTH, n, OCTET_SCALAR_LENGTH):
            s = os2ip(octets[index : index + OCTET_SCALAR_LENGTH])
            if s == 0 or s >= R:
                raise InvalidError("proof scalar out of range")
            scalars.append(s)
        return Proof(
            points[0],
            points[1],
            points[2],
            scalars[0],
            scalars[1],
            scalars[2],
            tuple(scalars[3:-1]),
            scalars[-1],
        )

    def octets_to_pubkey(self, pk: bytes) -> Any:
        """octets_to_pubkey: a valid non-identity G2 point (result cached per backend)."""
        if len(pk) != PUBLIC_KEY_LENGTH:
            raise InvalidError(f"public key must be {PUBLIC_KEY_LENGTH} octets")
        W = _decode_pubkey(self.backend, bytes(pk))
        if W is None:
            raise InvalidError("public key is not a valid non-identity G2 point")
        return W

    # ----------------------------------------------------------------------------- domain --
    def calculate_domain(
        self, pk: bytes, Q1: Any, H_points: Sequence[Any], header: bytes, api_id: bytes
    ) -> int:
        """calculate_domain(PK, Q_1, H_Points, header, api_id)."""
        be = self.backend
        dom_octs = (
            i2osp(len(H_points), 8)
            + be.g1_to_bytes(Q1)
            + b"".join(be.g1_to_bytes(h) for h in H_points)
            + api_id
        )
        dom_input = bytes(pk) + dom_octs + i2osp(len(header), 8) + bytes(header)
        return self.hash_to_scalar(dom_input, api_id + b"H2S_")

    # ------------------------------------------------------------------------ randomness --
    def calculate_random_scalars(self, count: int) -> list[int]:
        """calculate_random_scalars: OS2IP(get_random(48)) mod r, from the OS CSPRNG."""
        return [os2ip(secrets.token_bytes(EXPAND_LEN)) % R for _ in range(count)]

    def seeded_random_scalars(self, seed: bytes, dst: bytes, count: int) -> list[int]:
        """seeded_random_scalars (the draft's mocked RNG for test vectors)."""
        out_len = EXPAND_LEN * count
        if out_len > 65535:
            raise InvalidError("seeded_random_scalars: count too large")
        v = self._expand(seed, dst, out_len)
        return [os2ip(v[i * EXPAND_LEN : (i + 1) * EXPAND_LEN]) % R for i in range(count)]

    # ------------------------------------------------------------------------- signatures --
    def core_sign(
        self,
        sk: int,
        pk: bytes,
        generators: Sequence[Any],
        header: bytes,
        messages: Sequence[int],
        api_id: bytes,
    ) -> bytes:
        """CoreSign: deterministic (A, e) signature octets."""
        L = len(messages)
        if len(generators) != L + 1:
            raise InvalidError("core_sign: need exactly len(messages) + 1 generators")
        if not 0 < sk < R:
            raise InvalidError("core_sign: secret key out of range")
        Q1, H = generators[0], generators[1:]
        domain = self.calculate_domain(pk, Q1, H, header, api_id)
        e = self.hash_to_scalar(self.serialize([sk, *messages, domain]), api_id + b"H2S_")
        if (sk + e) % R == 0:
            raise InvalidError("core_sign: SK + e = 0 mod r")
        inv = _inv(sk + e)
        # A = (P1 + Q1*domain + sum H_i*msg_i) * 1/(SK + e), as one multi-scalar multiplication.
        A = self.backend.g1_msm([self.P1, Q1, *H], [inv, domain * inv % R, *(m * inv % R for m in messages)])
        if self.backend.g1_is_identity(A):
            raise InvalidError("core_sign: A is the identity")
        return self.signature_to_octets(Signature(A, e))

    def core_verify(
        self,
        pk: bytes,
        signature: bytes,
        generators: Sequence[Any],
        header: bytes,
        messages: Sequence[int],
        api_id: bytes,
    ) -> bool:
        """CoreVerify: e(A, W) * e(A*e - B, BP2) == 1."""
        pairs = self.core_verify_pairs(pk, signature, generators, header, messages, api_id)
        return pairs is not None and self.backend.pairing_product_is_one(pairs)

    def core_verify_pairs(
        self,
        pk: bytes,
        signature: bytes,
        generators: Sequence[Any],
        header: bytes,
        messages: Sequence[int],
        api_id: bytes,
    ) -> list[tuple[Any, Any]] | None:
        """CoreVerify up to the pairing: the (G1, G2) pairs whose product must be 1, or None if INVALID."""
        try:
            A, e = self.octets_to_signature(signature)
            W = self.octets_to_pubkey(pk)
        except InvalidError:
            return None
        L = len(messages)
        if len(generators) != L + 1:
            return None
        Q1, H = generators[0], generators[1:]
        domain = self.calculate_domain(pk, Q1, H, header, api_id)
        # A*e - B = A*e - P1 - Q1*domain - sum H_i*msg_i
        lhs = self.backend.g1_msm(
            [A, self.P1, Q1, *H], [e, R - 1, (R - domain) % R, *((R - m) % R for m in messages)]
        )
        return [(A, W), (lhs, self.BP2)]

    # ----------------------------------------------------------------------------- proofs --
    def proof_init(
        self,
        pk: bytes,
        signature: Signature,
        generators: Sequence[Any],
        random_scalars: Sequence[int],
        header: bytes,
        messages: Sequence[int],
        undisclosed_indexes: Sequence[int],
        api_id: bytes,
    ) -> ProofInitResult:
        """ProofInit: (Abar, Bbar, D, T1, T2, domain)."""
        A, e = signature
        L = len(messages)
        U = len(undisclosed_indexes)
        if len(random_scalars) != U + 5:
            raise InvalidError("proof_init: need len(undisclosed_indexes) + 5 random scalars")
        if len(generators) != L + 1:
            raise InvalidError("proof_init: need exactly len(messages) + 1 generators")
        if U > L or any(not 0 <= j < L for j in undisclosed_indexes):
            raise InvalidError("proof_init: undisclosed index out of range")
        r1, r2, e_t, r1_t, r3_t = random_scalars[:5]
        m_t = random_scalars[5:]
        Q1, H = generators[0], generators[1:]
        be = self.backend
        domain = self.calculate_domain(pk, Q1, H, header, api_id)
        B = be.g1_msm([self.P1, Q1, *H], [1, domain, *messages])
        r1r2 = r1 * r2 % R
        D = be.g1_mul(B, r2)
        Abar = be.g1_mul(A, r1r2)
        # Bbar = D*r1 - Abar*e = B*(r1 r2) - A*(r1 r2 e)
        Bbar = be.g1_msm([B, A], [r1r2, (R - r1r2 * e % R) % R])
        # T1 = Abar*e~ + D*r1~ = A*(r1 r2 e~) + B*(r2 r1~)
        T1 = be.g1_msm([A, B], [r1r2 * e_t % R, r2 * r1_t % R])
        # T2 = D*r3~ + sum H_j*m~_j = B*(r2 r3~) + sum H_j*m~_j
        T2 = be.g1_msm([B, *(H[j] for j in undisclosed_indexes)], [r2 * r3_t % R, *m_t])
        return ProofInitResult(Abar, Bbar, D, T1, T2, domain)

    def proof_finalize_values(
        self,
        init_res: ProofInitResult,
        challenge: int,
        e_value: int,
        random_scalars: Sequence[int],
        undisclosed_messages: Sequence[int],
    ) -> Proof:
        """ProofFinalize, returning the proof as a :class:`Proof` tuple."""
        U = len(undisclosed_messages)
        if len(random_scalars) != U + 5:
            raise InvalidError("proof_finalize: need len(undisclosed_messages) + 5 random scalars")
        r1, r2, e_t, r1_t, r3_t = random_scalars[:5]
        m_t = random_scalars[5:]
        r3 = _inv(r2)
        c = challenge
        e_hat = (e_t + e_value * c) % R
        r1_hat = (r1_t - r1 * c) % R
        r3_hat = (r3_t - r3 * c) % R
        m_hat = tuple((m_t[j] + undisclosed_messages[j] * c) % R for j in range(U))
        return Proof(init_res.Abar, init_res.Bbar, init_res.D, e_hat, r1_hat, r3_hat, m_hat, c)

    def proof_finalize(
        self,
        init_res: ProofInitResult,
        challenge: int,
        e_value: int,
        random_scalars: Sequence[int],
        undisclosed_messages: Sequence[int],
    ) -> bytes:
        """ProofFinalize: the proof octets."""
        return self.proof_to_octets(
            self.proof_finalize_values(init_res, challenge, e_value, random_scalars, undisclosed_messages)
        )

    def proof_verify_init(
        self,
        pk: bytes,
        proof: Proof,
        generators: Sequence[Any],
        header: bytes,
        disclosed_messages: Sequence[int],
        disclosed_indexes: Sequence[int],
        api_id: bytes,
    ) -> ProofInitResult:
        """ProofVerifyInit: recompute (Abar, Bbar, D, T1, T2, domain) from a proof."""
        U = len(proof.commitments)
        R_ = len(disclosed_indexes)
        L = R_ + U
        if len(disclosed_messages) != R_:
            raise InvalidError("proof_verify_init: disclosed messages and indexes differ in length")
        _check_ascending(disclosed_indexes, L)
        if len(generators) != L + 1:
            raise InvalidError("proof_verify_init: need exactly L + 1 generators")
        disclosed = set(disclosed_indexes)
        undisclosed = [j for j in range(L) if j not in disclosed]
        Q1, H = generators[0], generators[1:]
        be = self.backend
        c = proof.challenge
        domain = self.calculate_domain(pk, Q1, H, header, api_id)
        T1 = be.g1_msm([proof.Bbar, proof.Abar, proof.D], [c, proof.e_hat, proof.r1_hat])
        # T2 = Bv*c + D*r3^ + sum H_j*m^_j, Bv = P1 + Q1*domain + sum H_i*msg_i
        T2 = be.g1_msm(
            [self.P1, Q1, *(H[i] for i in disclosed_indexes), proof.D, *(H[j] for j in undisclosed)],
            [c, domain * c % R, *(m * c % R for m in disclosed_messages), proof.r3_hat, *proof.commitments],
        )
        return ProofInitResult(proof.Abar, proof.Bbar, proof.D, T1, T2, domain)

    def proof_challenge_calculate(
        self,
        init_res: ProofInitResult,
        disclosed_messages: Sequence[int],
        disclosed_indexes: Sequence[int],
        ph: bytes,
        api_id: bytes,
        *,
        extra_points: Sequence[Any] = (),
        octets_before_ph: bytes = b"",
        octets_after_ph: bytes = b"",
    ) -> int:
        """ProofChallengeCalculate.

        ``extra_points`` are serialized after T2 and before domain, ``octets_before_ph`` right
        after serialize(c_arr) and ``octets_after_ph`` after ``ph`` (extension hooks; empty for
        the plain interface).
        """
        R_ = len(disclosed_indexes)
        if len(disclosed_messages) != R_:
            raise InvalidError("challenge: disclosed messages and indexes differ in length")
        c_arr: list[object] = [U64(R_)]
        for i, msg in zip(disclosed_indexes, disclosed_messages, strict=True):
            c_arr.append(U64(i))
            c_arr.append(msg)
        c_arr.extend([init_res.Abar, init_res.Bbar, init_res.D, init_res.T1, init_res.T2, *extra_points])
        c_arr.append(init_res.domain)
        c_octs = self.serialize(c_arr) + octets_before_ph + i2osp(len(ph), 8) + bytes(ph) + octets_after_ph
        return self.hash_to_scalar(c_octs, api_id + b"H2S_")

    def core_proof_gen(
        self,
        pk: bytes,
        signature: bytes,
        generators: Sequence[Any],
        header: bytes,
        ph: bytes,
        messages: Sequence[int],
        disclosed_indexes: Sequence[int],
        api_id: bytes,
        random_scalars: RandomScalars | None = None,
    ) -> bytes:
        """CoreProofGen. ``random_scalars`` replaces calculate_random_scalars (test vectors only)."""
        sig = self.octets_to_signature(signature)
        L = len(messages)
        R_ = len(disclosed_indexes)
        if R_ > L:
            raise InvalidError("core_proof_gen: more disclosed indexes than messages")
        _check_ascending(disclosed_indexes, L)
        disclosed = set(disclosed_indexes)
        undisclosed = [j for j in range(L) if j not in disclosed]
        U = len(undisclosed)
        scalars = (random_scalars or self.calculate_random_scalars)(5 + U)
        init_res = self.proof_init(pk, sig, generators, scalars, header, messages, undisclosed, api_id)
        disclosed_msgs = [messages[i] for i in disclosed_indexes]
        challenge = self.proof_challenge_calculate(init_res, disclosed_msgs, disclosed_indexes, ph, api_id)
        return self.proof_finalize(init_res, challenge, sig.e, scalars, [messages[j] for j in undisclosed])

    def core_proof_verify(
        self,
        pk: bytes,
        proof: bytes,
        generators: Sequence[Any],
        header: bytes,
        ph: bytes,
        disclosed_messages: Sequence[int],
        disclosed_indexes: Sequence[int],
        api_id: bytes,
    ) -> bool:
        """CoreProofVerify: challenge recomputation, then e(Abar, W) * e(Bbar, -BP2) == 1."""
        try:
            proof_res = self.octets_to_proof(proof)
            W = self.octets_to_pubkey(pk)
        except InvalidError:
            return False
        # The pairing check does not depend on the challenge: start it now (on backends that
        # can run it concurrently) and recompute the challenge meanwhile.
        pairing_ok = self.pairing_check_abar_bbar_async(proof_res.Abar, proof_res.Bbar, W)
        try:
            init_res = self.proof_verify_init(
                pk, proof_res, generators, header, disclosed_messages, disclosed_indexes, api_id
            )
            challenge = self.proof_challenge_calculate(
                init_res, disclosed_messages, disclosed_indexes, ph, api_id
            )
        except InvalidError:
            pairing_ok()
            return False
        return pairing_ok() and challenge == proof_res.challenge

    def pairing_check_abar_bbar(self, Abar: Any, Bbar: Any, W: Any) -> bool:
        """e(Abar, W) * e(Bbar, -BP2) == Identity_GT."""
        return self.backend.pairing_product_is_one([(Abar, W), (Bbar, self._neg_bp2)])

    def pairing_check_abar_bbar_async(self, Abar: Any, Bbar: Any, W: Any) -> Callable[[], bool]:
        """Start :meth:`pairing_check_abar_bbar`; the returned callable waits for the answer."""
        return self.backend.pairing_product_is_one_async([(Abar, W), (Bbar, self._neg_bp2)])


def _check_ascending(indexes: Sequence[int], length: int) -> None:
    previous = -1
    for i in indexes:
        if isinstance(i, bool) or not isinstance(i, int):
            raise InvalidError("indexes must be integers")
        if i < 0:
            raise InvalidError(f"index {i} is negative")
        if i <= previous:
            raise InvalidError("indexes must be strictly ascending (sorted, no duplicates)")
        if i >= length:
            raise InvalidError(f"index {i} out of range for {length} messages")
        previous = i


__all__ = [
    "G1",
    "G2",
    "MAX_GENERATORS",
    "MAX_MESSAGES",
    "PROOF_LENGTH_FLOOR",
    "PUBLIC_KEY_LENGTH",
    "SECRET_KEY_LENGTH",
    "SIGNATURE_LENGTH",
    "U64",
    "Ciphersuite",
    "InvalidError",
    "Proof",
    "ProofInitResult",
    "RandomScalars",
    "Signature",
    "i2osp",
    "os2ip",
]
