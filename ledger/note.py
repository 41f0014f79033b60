"""C2SP signed notes (Ed25519), tlog-checkpoint bodies and tlog-cosignature `cosignature/v1`.

A signed note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
`— <name> <base64(key ID (4 bytes) || signature)>`. The key ID of an Ed25519 note key is the first 4
bytes of SHA-256(name || 0x0A || 0x01 || public key); a verifier key is written
`<name>+<key ID hex>+<base64(0x01 || public key)>`.

A checkpoint body is `<origin>\\n<tree size>\\n<base64 root hash>\\n` plus optional extension lines.

A witness cosignature (type byte 0x04) signs `cosignature/v1\\ntime <unix seconds>\\n` followed by the
checkpoint body; its signature line carries key ID (4) || timestamp (8, big-endian) || Ed25519 (64).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, field

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "Checkpoint",
    "Cosignature",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "add_signatures",
    "cosign_checkpoint",
    "cosignature_message",
    "format_checkpoint",
    "key_id",
    "parse_checkpoint",
    "parse_note",
    "sign_note",
    "verify_cosignature",
    "verify_note",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20
_DASH = "\u2014"
COSIGNATURE_PREFIX = "cosignature/v1\ntime "


class NoteError(ValueError):
    """A note, checkpoint, key or signature is malformed, forged or not trusted."""


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """First 4 bytes of SHA-256(name || 0x0A || alg || public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"invalid key name {name!r}")


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    name: str
    key_id: bytes
    verify_key: VerifyKey
    alg: int = ALG_ED25519

    @classmethod
    def from_key(cls, name: str, verify_key: VerifyKey, alg: int = ALG_ED25519) -> NoteVerifier:
        _check_name(name)
        return cls(name, key_id(name, bytes(verify_key), alg), verify_key, alg)

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Parse `<name>+<hex key ID>+<base64(alg || public key)>`."""
        parts = vkey.split("+", 2)  # the base64 key may itself contain "+"
        if len(parts) != 3:
            raise NoteError("malformed verifier key")
        name, hex_id, b64 = parts
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
            kid = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise NoteError("malformed verifier key") from None
        if len(kid) != 4 or len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError("unsupported verifier key")
        if key_id(name, raw[1:], raw[0]) != kid:
            raise NoteError("verifier key ID does not match the key")
        return cls(name, kid, VerifyKey(raw[1:]), raw[0])

    def vkey(self) -> str:
        b64 = base64.b64encode(bytes([self.alg]) + bytes(self.verify_key)).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"


@dataclass(frozen=True, slots=True)
class NoteSigner:
    name: str
    signing_key: SigningKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_key(self.name, self.signing_key.verify_key)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, bytes(self.signing_key.verify_key))


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # without the 4-byte key ID

    def line(self) -> str:
        return f"{_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            raise NoteError("note text contains a control character")


def sign_note(text: str, signer: NoteSigner) -> str:
    """Sign `text` (which must end in a newline) and return the signed note."""
    _check_text(text)
    sig = signer.signing_key.sign(text.encode()).signature
    return str(Note(text, (NoteSignature(signer.name, signer.key_id, sig),)))


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signature lines (nothing verified yet)."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteError("note too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not UTF-8") from None
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError("note too large")
    if not note.endswith("\n"):
        raise NoteError("note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    text, block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    lines = block.split("\n")[:-1]
    if not lines:
        raise NoteError("note has no signatures")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    sigs: list[NoteSignature] = []
    for line in lines:
        if not line.startswith(_DASH + " "):
            raise NoteError("malformed signature line")
        parts = line[2:].split(" ")
        if len(parts) != 2:
            raise NoteError("malformed signature line")
        name, b64 = parts
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise NoteError("malformed signature") from None
        if len(raw) < 5:
            raise NoteError("signature too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    return Note(text, tuple(sigs))


def verify_note(note: str | bytes | Note, verifiers: list[NoteVerifier]) -> Note:
    """Verify a note's Ed25519 signatures by the given keys; at least one must be present.

    Signatures by unknown keys are kept but not checked; a signature by a known key that does not
    verify is an error (a forgery, not an unknown signer). Returns the note.
    """
    n = note if isinstance(note, Note) else parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers if v.alg == ALG_ED25519}
    verified = 0
    for s in n.signatures:
        v = known.get((s.name, s.key_id))
        if v is None:
            continue
        if len(s.signature) != 64:
            raise NoteError(f"signature by {s.name} has the wrong length")
        try:
            v.verify_key.verify(n.text.encode(), s.signature)
        except BadSignatureError:
            raise NoteError(f"invalid signature by {s.name}") from None
        verified += 1
    if not verified:
        raise NoteError("no signature by a known key")
    return n


def add_signatures(note: str, lines: list[str]) -> str:
    """Append signature lines (e.g. witness cosignatures) to a signed note."""
    n = parse_note(note)
    extra = parse_note("x\n\n" + "".join(lines)).signatures if lines else ()
    seen = {(s.name, s.key_id) for s in n.signatures}
    merged = list(n.signatures) + [s for s in extra if (s.name, s.key_id) not in seen]
    return str(Note(n.text, tuple(merged)))


# --------------------------------------------------------------------------------------------
# tlog-checkpoint


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        return format_checkpoint(self)


def format_checkpoint(c: Checkpoint) -> str:
    if not c.origin or "\n" in c.origin:
        raise NoteError("invalid origin")
    if c.size < 0 or len(c.root_hash) != 32:
        raise NoteError("invalid checkpoint size or root")
    lines = [c.origin, str(c.size), base64.b64encode(c.root_hash).decode(), *c.extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the text of a signed note)."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint is truncated")
    origin, size_s, root_s, *ext = lines
    if not origin:
        raise NoteError("checkpoint has no origin")
    if not size_s.isascii() or not size_s.isdigit() or (len(size_s) > 1 and size_s[0] == "0"):
        raise NoteError("malformed tree size")
    try:
        root = base64.b64decode(root_s, validate=True)
    except binascii.Error:
        raise NoteError("malformed root hash") from None
    if len(root) != 32:
        raise NoteError("root hash must be 32 bytes")
    if any(not e for e in ext):
        raise NoteError("empty extension line")
    return Checkpoint(origin, int(size_s), root, tuple(ext))


# --------------------------------------------------------------------------------------------
# tlog-cosignature


@dataclass(frozen=True, slots=True)
class Cosignature:
    name: str
    key_id: bytes
    timestamp: int  # Unix seconds
    signature: bytes

    def line(self) -> str:
        raw = self.key_id + struct.pack(">Q", self.timestamp) + self.signature
        return f"{_DASH} {self.name} {base64.b64encode(raw).decode()}\n"


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"{COSIGNATURE_PREFIX}{timestamp}\n{checkpoint_text}".encode()


def cosign_checkpoint(
    checkpoint_text: str, name: str, signing_key: SigningKey, timestamp: int
) -> Cosignature:
    """Produce a `cosignature/v1` over a checkpoint body at `timestamp` (Unix seconds)."""
    _check_name(name)
    _check_text(checkpoint_text)
    parse_checkpoint(checkpoint_text)
    kid = key_id(name, bytes(signing_key.verify_key), ALG_COSIGNATURE_V1)
    sig = signing_key.sign(cosignature_message(checkpoint_text, timestamp)).signature
    return Cosignature(name, kid, timestamp, sig)


def verify_cosignature(note: str | Note, verifier: NoteVerifier) -> Cosignature:
    """Find and verify the cosignature by `verifier` (a 0x04 key) on a signed checkpoint note."""
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise NoteError("not a cosignature verifier key")
    n = note if isinstance(note, Note) else parse_note(note)
    for s in n.signatures:
        if s.name != verifier.name or s.key_id != verifier.key_id:
            continue
        if len(s.signature) != 72:
            raise NoteError(f"cosignature by {s.name} has the wrong length")
        (ts,) = struct.unpack(">Q", s.signature[:8])
        try:
            verifier.verify_key.verify(cosignature_message(n.text, ts), s.signature[8:])
        except BadSignatureError:
            raise NoteError(f"invalid cosignature by {s.name}") from None
        return Cosignature(s.name, s.key_id, ts, s.signature[8:])
    raise NoteError(f"no cosignature by {verifier.name}")
