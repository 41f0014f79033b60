"""The BBS Signatures Interface (api_id = ciphersuite_id || "H2G_HM2S_"): validating public API.

``keygen``, ``sign`` and ``proof_gen`` raise ``ValueError`` on bad arguments; ``verify`` and
``proof_verify`` return ``False`` for every invalid or malformed input and never raise on
attacker-supplied values.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache

from .backend import Backend, default_backend_name, get_backend
from .core import (
    MAX_MESSAGES,
    PROOF_LENGTH_FLOOR,
    PUBLIC_KEY_LENGTH,
    SECRET_KEY_LENGTH,
    SIGNATURE_LENGTH,
    Ciphersuite,
    InvalidError,
    RandomScalars,
    i2osp,
    os2ip,
)
from .hashing import ExpandMessage, expand_message_xmd, expand_message_xof
from .params import CURVE_ORDER, OCTET_SCALAR_LENGTH

MIN_KEY_MATERIAL_BYTES = 32
MAX_KEY_INFO_BYTES = 65535
_PAIR_CACHE_SIZE = 256

Octets = bytes | bytearray | memoryview


def _octets(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise ValueError(f"{name} must be bytes, got {type(value).__name__}")


def _message_list(name: str, messages: object) -> list[bytes]:
    if isinstance(messages, bytes | bytearray | memoryview | str) or not isinstance(messages, Sequence):
        raise ValueError(f"{name} must be a sequence of bytes")
    if len(messages) > MAX_MESSAGES:
        raise ValueError(f"{name}: at most {MAX_MESSAGES} messages are supported, got {len(messages)}")
    return [_octets(f"{name}[{i}]", m) for i, m in enumerate(messages)]


def _index_list(indexes: object, length: int) -> list[int]:
    if isinstance(indexes, bytes | bytearray | memoryview | str) or not isinstance(indexes, Sequence):
        raise ValueError("disclosed_indexes must be a sequence of integers")
    out: list[int] = []
    for i in indexes:
        if isinstance(i, bool) or not isinstance(i, int):
            raise ValueError("disclosed_indexes must contain integers only")
        if not 0 <= i < length:
            raise ValueError(f"disclosed index {i} out of range for {length} messages")
        if out and i <= out[-1]:
            raise ValueError("disclosed_indexes must be strictly ascending (sorted, without duplicates)")
        out.append(i)
    return out


class BBSCiphersuite(Ciphersuite):
    """A ciphersuite with the BBS Signatures Interface on top of the core operations."""

    def __init__(self, name: str, ciphersuite_id: bytes, expand: ExpandMessage, backend: Backend) -> None:
        super().__init__(name, ciphersuite_id, expand, backend)
        self._pairs: OrderedDict[bytes, bool] = OrderedDict()
        self._pairs_lock = threading.Lock()

    # ------------------------------------------------------------------------------- keys --
    def keygen(self, key_material: bytes, key_info: bytes = b"", key_dst: bytes | None = None) -> bytes:
        """KeyGen: a 32-byte secret key derived from at least 32 bytes of secret key material."""
        key_material = _octets("key_material", key_material)
        key_info = _octets("key_info", key_info)
        if len(key_material) < MIN_KEY_MATERIAL_BYTES:
            raise ValueError(f"key_material must be at least {MIN_KEY_MATERIAL_BYTES} bytes")
        if len(key_info) > MAX_KEY_INFO_BYTES:
            raise ValueError(f"key_info must be at most {MAX_KEY_INFO_BYTES} bytes")
        dst = self.ciphersuite_id + b"KEYGEN_DST_" if key_dst is None else _octets("key_dst", key_dst)
        if len(dst) > 255:
            raise ValueError("key_dst must be at most 255 bytes")
        derive_input = key_material + i2osp(len(key_info), 2) + key_info
        sk = self.hash_to_scalar(derive_input, dst)
        if sk == 0:
            raise ValueError("key derivation produced the zero scalar; use other key material")
        return i2osp(sk, SECRET_KEY_LENGTH)

    def _secret_scalar(self, sk: object) -> int:
        sk = _octets("sk", sk)
        if len(sk) != SECRET_KEY_LENGTH:
            raise ValueError(f"sk must be {SECRET_KEY_LENGTH} bytes")
        x = os2ip(sk)
        if not 0 < x < CURVE_ORDER:
            raise ValueError("sk must encode a scalar in [1, r-1]")
        return x

    def sk_to_pk(self, sk: bytes) -> bytes:
        """SkToPk: the 96-byte compressed G2 public key."""
        x = self._secret_scalar(sk)
        return self.backend.g2_to_bytes(self.backend.g2_mul(self.BP2, x))

    def _check_pair(self, sk: bytes, x: int, pk: bytes) -> None:
        digest = hashlib.sha256(b"bbs-sk-pk-pair\x00" + sk + pk).digest()
        with self._pairs_lock:
            if digest in self._pairs:
                self._pairs.move_to_end(digest)
                return
        if self.backend.g2_to_bytes(self.backend.g2_mul(self.BP2, x)) != pk:
            raise ValueError("pk is not the public key of sk")
        with self._pairs_lock:
            self._pairs[digest] = True
            while len(self._pairs) > _PAIR_CACHE_SIZE:
                self._pairs.popitem(last=False)

    def _public_key(self, pk: object) -> bytes:
        pk = _octets("pk", pk)
        if len(pk) != PUBLIC_KEY_LENGTH:
            raise ValueError(f"pk must be {PUBLIC_KEY_LENGTH} bytes")
        try:
            self.octets_to_pubkey(pk)
        except InvalidError as exc:
            raise ValueError(f"invalid pk: {exc}") from None
        return pk

    # ------------------------------------------------------------------------- signatures --
    def sign(self, sk: bytes, pk: bytes, header: bytes = b"", messages: Sequence[bytes] = ()) -> bytes:
        """Sign: an 80-byte signature over header and messages."""
        x = self._secret_scalar(sk)
        pk = self._public_key(pk)
        header = _octets("header", header)
        msgs = _message_list("messages", messages)
        self._check_pair(bytes(sk), x, pk)
        scalars = self.messages_to_scalars(msgs, self.api_id)
        generators = self.create_generators(len(msgs) + 1, self.api_id)
        try:
            return self.core_sign(x, pk, generators, header, scalars, self.api_id)
        except InvalidError as exc:
            raise ValueError(str(exc)) from None

    def verify(
        self, pk: bytes, signature: bytes, header: bytes = b"", messages: Sequence[bytes] = ()
    ) -> bool:
        """Verify: True iff signature is valid for pk, header and messages."""
        try:
            pk = _octets("pk", pk)
            signature = _octets("signature", signature)
            header = _octets("header", header)
            msgs = _message_list("messages", messages)
            if len(pk) != PUBLIC_KEY_LENGTH or len(signature) != SIGNATURE_LENGTH:
                return False
            scalars = self.messages_to_scalars(msgs, self.api_id)
            generators = self.create_generators(len(msgs) + 1, self.api_id)
            return self.core_verify(pk, signature, generators, header, scalars, self.api_id)
        except Exception:  # fail closed: malformed input of any kind never verifies
            return False

    # ----------------------------------------------------------------------------- proofs --
    def proof_gen(
        self,
        pk: bytes,
        signature: bytes,
        header: bytes = b"",
        presentation_header: bytes = b"",
        messages: Sequence[bytes] = (),
        disclosed_indexes: Sequence[int] = (),
    ) -> bytes:
        """ProofGen: an unlinkable proof of the signature disclosing messages[disclosed_indexes]."""
        return self._proof_gen(pk, signature, header, presentation_header, messages, disclosed_indexes, None)

    def _proof_gen(
        self,
        pk: bytes,
        signature: bytes,
        header: bytes,
        presentation_header: bytes,
        messages: Sequence[bytes],
        disclosed_indexes: Sequence[int],
        random_scalars: RandomScalars | None,
    ) -> bytes:
        pk = self._public_key(pk)
        signature = _octets("signature", signature)
        header = _octets("header", header)
        ph = _octets("presentation_header", presentation_header)
        msgs = _message_list("messages", messages)
        indexes = _index_list(disclosed_indexes, len(msgs))
        try:
            self.octets_to_signature(signature)
        except InvalidError as exc:
            raise ValueError(f"invalid signature: {exc}") from None
        scalars = self.messages_to_scalars(msgs, self.api_id)
        generators = self.create_generators(len(msgs) + 1, self.api_id)
        pairs = self.core_verify_pairs(pk, signature, generators, header, scalars, self.api_id)
        if pairs is None:
            raise ValueError("signature does not verify for pk, header and messages")
        # the signature's pairing check runs alongside the proof computation where the backend can
        signature_ok = self.backend.pairing_product_is_one_async(pairs)
        try:
            proof = self.core_proof_gen(
                pk, signature, generators, header, ph, scalars, indexes, self.api_id, random_scalars
            )
        except InvalidError as exc:
            signature_ok()
            raise ValueError(str(exc)) from None
        if not signature_ok():
            raise ValueError("signature does not verify for pk, header and messages")
        return proof

    def proof_verify(
        self,
        pk: bytes,
        proof: bytes,
        header: bytes = b"",
        presentation_header: bytes = b"",
        disclosed_messages: Sequence[bytes] = (),
        disclosed_indexes: Sequence[int] = (),
    ) -> bool:
        """ProofVerify: True iff proof is valid for pk, header, presentation header and disclosures."""
        try:
            pk = _octets("pk", pk)
            proof = _octets("proof", proof)
            header = _octets("header", header)
            ph = _octets("presentation_header", presentation_header)
            msgs = _message_list("disclosed_messages", disclosed_messages)
            if len(pk) != PUBLIC_KEY_LENGTH:
                return False
            extra = len(proof) - PROOF_LENGTH_FLOOR
            if extra < 0 or extra % OCTET_SCALAR_LENGTH:
                return False
            total = extra // OCTET_SCALAR_LENGTH + len(msgs)
            if total > MAX_MESSAGES:
                return False
            indexes = _index_list(disclosed_indexes, total)
            if len(indexes) != len(msgs):
                return False
            scalars = self.messages_to_scalars(msgs, self.api_id)
            generators = self.create_generators(total + 1, self.api_id)
            return self.core_proof_verify(pk, proof, generators, header, ph, scalars, indexes, self.api_id)
        except Exception:  # fail closed: malformed input of any kind never verifies
            return False


_SUITES: dict[str, tuple[bytes, ExpandMessage]] = {
    "BLS12_381_SHA_256": (b"BBS_BLS12381G1_XMD:SHA-256_SSWU_RO_", expand_message_xmd),
    "BLS12_381_SHAKE_256": (b"BBS_BLS12381G1_XOF:SHAKE-256_SSWU_RO_", expand_message_xof),
}
SUITE_NAMES = tuple(_SUITES)


@cache
def _suite(name: str, backend: str) -> BBSCiphersuite:
    ciphersuite_id, expand = _SUITES[name]
    return BBSCiphersuite(name, ciphersuite_id, expand, get_backend(backend))


def suite_for(name: str, backend: str | None = None) -> BBSCiphersuite:
    """The ciphersuite ``name`` (e.g. "BLS12_381_SHA_256" or "BLS12-381-SHAKE-256") on a backend.

    ``backend`` is "arkworks" or "py_ecc"; by default the process-wide default backend.
    """
    key = name.upper().replace("-", "_")
    if key not in _SUITES:
        raise ValueError(f"unknown BBS ciphersuite {name!r}; known: {', '.join(SUITE_NAMES)}")
    return _suite(key, backend or default_backend_name())
