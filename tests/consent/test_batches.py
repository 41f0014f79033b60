"""Signed batch wire format: signatures, devices, limits and validation at the edge."""

from __future__ import annotations

import json
import uuid

import pytest

from consent.batches import (
    MAX_BATCH_BYTES,
    MAX_READINGS,
    SIGNING_CONTEXT,
    BadSignature,
    Batch,
    BatchTooLarge,
    InvalidBatch,
    Reading,
    SignedBatch,
    encode_payload,
    parse_payload,
    sign_batch,
)

from .support import T0, device_key, readings


def _batch(n: int = 3, device_id: str = "dev-1") -> Batch:
    return Batch(
        uuid.uuid4().int, device_id, T0, tuple(readings("home.energy_kwh", [T0 + i for i in range(n)]))
    )


def test_round_trip_through_the_envelope() -> None:
    key = device_key(1)
    original = _batch()
    signed = sign_batch(original, key)
    wire = json.loads(json.dumps(signed.to_envelope()))
    again = SignedBatch.from_envelope(wire)
    assert again.open(key.verify_key) == original
    # the payload is canonical JSON: sorted keys, no whitespace
    assert signed.payload == encode_payload(original)
    assert b" " not in signed.payload.replace(b"Old Town", b"")
    assert list(json.loads(signed.payload)) == sorted(json.loads(signed.payload))


def test_forged_signature_is_refused() -> None:
    key = device_key(1)
    signed = sign_batch(_batch(), key)
    forged = SignedBatch(signed.payload, bytes([signed.signature[0] ^ 1]) + signed.signature[1:])
    with pytest.raises(BadSignature):
        forged.open(key.verify_key)
    tampered = SignedBatch(signed.payload.replace(b'"value":1.5', b'"value":9.5', 1), signed.signature)
    with pytest.raises(BadSignature):
        tampered.open(key.verify_key)


def test_batch_signed_by_another_device_is_refused() -> None:
    signed = sign_batch(_batch(), device_key(2))
    with pytest.raises(BadSignature):
        signed.open(device_key(1).verify_key)


def test_signature_is_domain_separated() -> None:
    key = device_key(1)
    payload = encode_payload(_batch())
    plain = SignedBatch(payload, key.sign(payload).signature)  # no context prefix
    with pytest.raises(BadSignature):
        plain.open(key.verify_key)
    assert key.verify_key.verify(SIGNING_CONTEXT + payload, sign_batch(parse_payload(payload), key).signature)


def test_ten_thousand_readings_ok_ten_thousand_and_one_refused() -> None:
    key = device_key(1)
    ok = sign_batch(_batch(MAX_READINGS), key)
    assert len(ok.open(key.verify_key).readings) == MAX_READINGS == 10_000
    with pytest.raises(BatchTooLarge):
        sign_batch(_batch(MAX_READINGS + 1), key)
    # a device that ignores the limit is refused by the gateway's parser too
    big = _batch(MAX_READINGS + 1)
    payload = encode_payload(big)
    signed = SignedBatch(payload, key.sign(SIGNING_CONTEXT + payload).signature)
    with pytest.raises(BatchTooLarge):
        signed.open(key.verify_key)


def test_oversized_payload_is_refused_before_parsing() -> None:
    key = device_key(1)
    payload = b"{" + b" " * MAX_BATCH_BYTES + b"}"
    with pytest.raises(BatchTooLarge):
        SignedBatch(payload, key.sign(payload).signature).open(key.verify_key)


def _payload(**change: object) -> bytes:
    body: dict[str, object] = {
        "v": 1,
        "batch_id": str(uuid.uuid4()),
        "device_id": "dev-1",
        "sent_ns": T0,
        "readings": [{"stream": "home.energy_kwh", "ts_ns": T0, "value": 1.0, "lat": 48.2, "lon": 16.3}],
    }
    body.update(change)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"batch_id": "not-a-uuid"},
        {"batch_id": str(uuid.UUID(int=0))},
        {"device_id": ""},
        {"readings": []},
        {"readings": "x"},
        {"readings": [{"stream": "nope", "ts_ns": T0, "value": 1.0, "lat": 48.2, "lon": 16.3}]},
        {"readings": [{"stream": "home.energy_kwh", "ts_ns": 1.5, "value": 1.0, "lat": 48.2, "lon": 16.3}]},
        {"readings": [{"stream": "home.energy_kwh", "ts_ns": T0, "value": "1", "lat": 48.2, "lon": 16.3}]},
        {"readings": [{"stream": "home.energy_kwh", "ts_ns": T0, "value": 1.0, "lat": 91.0, "lon": 16.3}]},
        {"readings": [{"stream": "home.energy_kwh", "ts_ns": T0, "value": 1.0, "lat": 48.2}]},
        {
            "readings": [
                {
                    "stream": "home.energy_kwh",
                    "ts_ns": T0,
                    "value": 1.0,
                    "lat": 48.2,
                    "lon": 16.3,
                    "serial": "X",
                }
            ]
        },
        {"readings": [{"stream": "home.energy_kwh", "ts_ns": True, "value": 1.0, "lat": 48.2, "lon": 16.3}]},
        {"extra": 1},
    ],
)
def test_malformed_payloads_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(InvalidBatch):
        parse_payload(_payload(**change))


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"v": NaN}', "é".encode("latin-1")])
def test_non_json_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidBatch):
        parse_payload(raw)


@pytest.mark.parametrize(
    "envelope",
    [None, [], {"payload": "x"}, {"payload": 1, "signature": "x"}, {"payload": "a=", "signature": "b"}],
)
def test_malformed_envelopes_are_refused(envelope: object) -> None:
    with pytest.raises(InvalidBatch):
        SignedBatch.from_envelope(envelope)


def test_integer_values_are_accepted_as_numbers() -> None:
    batch = parse_payload(
        _payload(readings=[{"stream": "home.energy_kwh", "ts_ns": T0, "value": 3, "lat": 48, "lon": 16}])
    )
    assert batch.readings == (Reading("home.energy_kwh", T0, 3.0, 48.0, 16.0),)


def test_the_spec_example_verifies() -> None:
    from pathlib import Path

    from nacl.signing import SigningKey

    text = (Path(__file__).parents[2] / "specs" / "sensor-readings.md").read_text()
    start = text.index('{"payload": ')
    envelope = json.loads(text[start : text.index("}", start) + 1])
    batch = SignedBatch.from_envelope(envelope).open(SigningKey(b"\x01" * 32).verify_key)
    assert batch.device_id == "dev-4f2a9c" and len(batch.readings) == 2
