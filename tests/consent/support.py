"""Helpers for the consent tests: a settable clock, terms, devices and batches."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence

from nacl.signing import SigningKey

from consent.batches import Batch, Reading, SignedBatch, sign_batch
from consent.minimise import DEFAULT_GRID
from consent.receipts import ReceiptSigner
from consent.records import ConsentTerms, Notice

T0 = 1_800_000_000 * 10**9  # 2027-01-15, on a minute boundary
MIN = 60 * 10**9
HOUR = 60 * MIN
DAY = 24 * HOUR

NOTICE = Notice("https://civitas.city/notices/sensors", "1", hashlib.sha256(b"notice v1").hexdigest())
NOTICE_V2 = Notice("https://civitas.city/notices/sensors", "2", hashlib.sha256(b"notice v2").hexdigest())


class Clock:
    """A clock the test moves by hand (thread-safe enough: int assignment)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def receipt_signer() -> ReceiptSigner:
    return ReceiptSigner(SigningKey(b"\x07" * 32), "did:key:z6Mk-test#z6Mk-test")


def terms(
    subject: str = "pseudo-alice",
    *,
    categories: Iterable[str] = ("pd:Location",),
    purposes: Iterable[str] = ("dpv:PublicBenefit",),
    recipients: Iterable[str] = ("transport-agency",),
    valid_from_ns: int = T0,
    valid_until_ns: int = T0 + 30 * DAY,
    notice: Notice = NOTICE,
) -> ConsentTerms:
    return ConsentTerms(
        subject=subject,
        controller="city-of-civitas",
        notice=notice,
        language="en",
        purposes=frozenset(purposes),
        categories=frozenset(categories),
        recipients=frozenset(recipients),
        jurisdiction="EU",
        retention_s=90 * 86_400,
        withdrawal_method="wallet app: consent > withdraw",
        valid_from_ns=valid_from_ns,
        valid_until_ns=valid_until_ns,
    )


def device_key(seed: int) -> SigningKey:
    return SigningKey(hashlib.sha256(b"device" + seed.to_bytes(4, "big")).digest())


def readings(
    stream: str, times: Sequence[int], *, district: str = "Old Town", value: float = 1.5
) -> list[Reading]:
    lat, lon = DEFAULT_GRID.centre_of(district)
    return [Reading(stream, ts, value, lat, lon) for ts in times]


def batch(
    device_id: str,
    key: SigningKey,
    items: Sequence[Reading],
    *,
    batch_id: int | None = None,
    sent_ns: int = T0,
) -> SignedBatch:
    bid = batch_id if batch_id is not None else uuid.uuid4().int
    return sign_batch(Batch(bid, device_id, sent_ns, tuple(items)), key)
