"""Signed sensor-reading batches: the wire format, signing and verification; pure.

Payload (UTF-8 JSON object, keys sorted, no whitespace as produced by `encode_payload`)::

    {"batch_id": "<UUID>", "device_id": "<id>", "readings": [
        {"lat": 48.2, "lon": 16.3, "stream": "home.energy_kwh", "ts_ns": 1795000000000000000,
         "value": 0.42}, ...], "sent_ns": <int>, "v": 1}

The device signs ``b"civitas-sensor-batch/v1\\n" + payload`` with its Ed25519 key. On the wire
the batch travels as a JSON envelope ``{"payload": b64url(payload), "signature": b64url(sig)}``.
The gateway verifies the signature over the payload bytes exactly as received (never
re-serialising), then parses and validates. `batch_id` makes ingest idempotent.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from consent.canonical import canonical_json
from consent.records import ConsentError
from consent.vocab import STREAMS

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_READINGS",
    "SIGNING_CONTEXT",
    "BadSignature",
    "Batch",
    "BatchError",
    "BatchTooLarge",
    "InvalidBatch",
    "Reading",
    "SignedBatch",
    "encode_payload",
    "parse_payload",
    "sign_batch",
]

MAX_READINGS: Final = 10_000
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024  # payload bytes; ~ 400 bytes per reading at the limit
SIGNING_CONTEXT: Final = b"civitas-sensor-batch/v1\n"
FORMAT_VERSION: Final = 1
TS_MIN_NS: Final = 946_684_800 * 10**9  # 2000-01-01
TS_MAX_NS: Final = 4_102_444_800 * 10**9  # 2100-01-01
_BATCH_KEYS: Final = frozenset({"v", "batch_id", "device_id", "sent_ns", "readings"})


class BatchError(ConsentError):
    """A batch is refused at the edge; nothing is stored."""


class BatchTooLarge(BatchError):
    """More than MAX_READINGS readings or MAX_BATCH_BYTES payload bytes (HTTP 413)."""


class InvalidBatch(BatchError):
    """Malformed envelope, payload or reading (HTTP 422)."""


class BadSignature(BatchError):
    """The signature does not verify with the device's registered key, or the device is unknown."""


class Reading(NamedTuple):
    """One sensor reading as sent by a device (before minimisation)."""

    stream: str
    ts_ns: int
    value: float
    lat: float
    lon: float

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "ts_ns": self.ts_ns,
            "value": self.value,
            "lat": self.lat,
            "lon": self.lon,
        }


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: int
    device_id: str
    sent_ns: int
    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True)
class SignedBatch:
    """Payload bytes and the device's Ed25519 signature over the context-prefixed payload."""

    payload: bytes
    signature: bytes

    def to_envelope(self) -> dict[str, str]:
        return {"payload": _b64u(self.payload), "signature": _b64u(self.signature)}

    @classmethod
    def from_envelope(cls, data: Any) -> SignedBatch:
        if not isinstance(data, dict) or set(data) != {"payload", "signature"}:
            raise InvalidBatch("envelope must be {payload, signature}")
        payload_b64, sig_b64 = data["payload"], data["signature"]
        if not isinstance(payload_b64, str) or not isinstance(sig_b64, str):
            raise InvalidBatch("payload and signature are base64url strings")
        if len(payload_b64) > (MAX_BATCH_BYTES * 4) // 3 + 4:
            raise BatchTooLarge(f"payload exceeds {MAX_BATCH_BYTES} bytes")
        return cls(_unb64u(payload_b64), _unb64u(sig_b64))

    def parse_unverified(self) -> Batch:
        """Parse and validate the payload; trust nothing in it until `verify_signature` passes."""
        return parse_payload(self.payload)

    def verify_signature(self, key: VerifyKey) -> None:
        """Raise BadSignature unless the device key signed exactly these payload bytes."""
        if len(self.signature) != 64:
            raise BadSignature("an Ed25519 signature is 64 bytes")
        try:
            key.verify(SIGNING_CONTEXT + self.payload, self.signature)
        except BadSignatureError:
            raise BadSignature("batch signature does not verify") from None

    def open(self, key: VerifyKey) -> Batch:
        """Size check, signature check, then parse: the whole edge check for a known key."""
        if len(self.payload) > MAX_BATCH_BYTES:
            raise BatchTooLarge(f"payload exceeds {MAX_BATCH_BYTES} bytes")
        self.verify_signature(key)
        return parse_payload(self.payload)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    if len(text) % 4 == 1 or "=" in text:
        raise InvalidBatch("invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidBatch("invalid base64url") from None


def encode_payload(batch: Batch) -> bytes:
    """The canonical payload bytes of a batch."""
    return canonical_json(
        {
            "v": FORMAT_VERSION,
            "batch_id": str(uuid.UUID(int=batch.batch_id)),
            "device_id": batch.device_id,
            "sent_ns": batch.sent_ns,
            "readings": [r.to_json() for r in batch.readings],
        }
    )


def sign_batch(batch: Batch, key: SigningKey) -> SignedBatch:
    """What a device does: encode the batch and sign it (the reference device implementation)."""
    if len(batch.readings) > MAX_READINGS:
        raise BatchTooLarge(f"at most {MAX_READINGS} readings per batch")
    payload = encode_payload(batch)
    return SignedBatch(payload, key.sign(SIGNING_CONTEXT + payload).signature)


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise InvalidBatch(f"{name} must be an integer in [{lo}, {hi}]")
    return value


def _float(name: str, value: Any, lo: float, hi: float) -> float:
    if type(value) is int:
        value = float(value)
    if type(value) is not float or not math.isfinite(value) or not lo <= value <= hi:
        raise InvalidBatch(f"{name} must be a finite number in [{lo}, {hi}]")
    return value


def _readings(items: Iterable[Any]) -> tuple[Reading, ...]:
    """Validate readings; written for speed (this runs once per reading at ingest)."""
    out: list[Reading] = []
    append = out.append
    streams = STREAMS
    make = tuple.__new__  # Reading(...) without the Python-level __new__ (half the cost)
    for item in items:
        if type(item) is not dict or len(item) != 5:
            raise InvalidBatch("a reading is {stream, ts_ns, value, lat, lon}")
        try:
            stream = item["stream"]
            ts = item["ts_ns"]
            value = item["value"]
            lat = item["lat"]
            lon = item["lon"]
        except KeyError:
            raise InvalidBatch("a reading is {stream, ts_ns, value, lat, lon}") from None
        if type(stream) is not str or stream not in streams:
            raise InvalidBatch("unknown stream")
        if type(ts) is not int or not TS_MIN_NS <= ts <= TS_MAX_NS:
            raise InvalidBatch("ts_ns must be an integer UTC nanosecond time in 2000..2100")
        if type(value) is not float or not -1e15 <= value <= 1e15:  # the range test also rejects NaN
            value = _float("value", value, -1e15, 1e15)
        if type(lat) is not float or not -90.0 <= lat <= 90.0:
            lat = _float("lat", lat, -90.0, 90.0)
        if type(lon) is not float or not -180.0 <= lon <= 180.0:
            lon = _float("lon", lon, -180.0, 180.0)
        append(make(Reading, (stream, ts, value, lat, lon)))
    return tuple(out)


def _reject_constant(name: str) -> Any:
    raise InvalidBatch(f"{name} is not valid JSON")


def parse_payload(payload: bytes) -> Batch:
    """Parse and validate payload bytes (no signature check: see `SignedBatch.verify`)."""
    if len(payload) > MAX_BATCH_BYTES:
        raise BatchTooLarge(f"payload exceeds {MAX_BATCH_BYTES} bytes")
    try:
        data = json.loads(payload, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidBatch("payload is not UTF-8 JSON") from None
    if type(data) is not dict or data.keys() != _BATCH_KEYS:
        raise InvalidBatch("payload is {v, batch_id, device_id, sent_ns, readings}")
    if data["v"] != FORMAT_VERSION:
        raise InvalidBatch("unsupported batch format version")
    try:
        batch_id = uuid.UUID(data["batch_id"]).int
    except (ValueError, AttributeError, TypeError):
        raise InvalidBatch("batch_id must be a UUID") from None
    if batch_id == 0:
        raise InvalidBatch("batch_id must not be zero")
    device_id = data["device_id"]
    if type(device_id) is not str or not 0 < len(device_id) <= 64:
        raise InvalidBatch("device_id must be a 1..64 character string")
    sent_ns = _int("sent_ns", data["sent_ns"], 0, TS_MAX_NS)
    items = data["readings"]
    if type(items) is not list:
        raise InvalidBatch("readings must be an array")
    if len(items) > MAX_READINGS:
        raise BatchTooLarge(f"at most {MAX_READINGS} readings per batch")
    if not items:
        raise InvalidBatch("a batch holds at least one reading")
    return Batch(batch_id, device_id, sent_ns, _readings(items))
