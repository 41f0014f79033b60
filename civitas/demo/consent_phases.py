"""Consent phases: consent given and withdrawn, personal and public devices, signed reading batches."""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import Any

from nacl.signing import SigningKey

from civitas.demo.city import AFTERNOON, MORNING, DeviceSpec
from civitas.demo.clock import HOUR_NS
from civitas.demo.runner import DemoContext
from civitas.demo.state import (
    NS,
    ApiError,
    CitizenState,
    DeviceState,
    b64u,
    citizens_of,
    clients_of,
    devices_of,
    expect_json,
    sign_in,
)
from civitas.demo.summary import PhaseFigures

__all__ = [
    "give_consent",
    "register_public_sensors",
    "stream_afternoon",
    "stream_morning",
    "withdraw_consent",
]


MAX_BATCH_READINGS = 10_000
NOTICE_TEXT = (
    "City of Civitas: sharing your sensor data. You choose which agency receives which kind of "
    "reading, for which purpose. Each accepted reading earns a micro-reward. You can withdraw at any "
    "time with one tap; readings after that are no longer shared."
)
NOTICE = {
    "id": "https://civitas.city/notices/sensor-sharing",
    "version": "2026-01",
    "sha256": hashlib.sha256(NOTICE_TEXT.encode()).hexdigest(),
}


def give_consent(ctx: DemoContext, fig: PhaseFigures) -> None:
    """At 06:30 each citizen signs in to the consent service, accepts some of the city's data-sharing
    offers (`POST /consent/records`) and registers their home hub and EV (`POST /sensors/devices`)
    with their ledger account for rewards."""
    from civitas.demo.city import CONSENT_OFFERS

    ctx.clock.advance_to(6 * HOUR_NS + 30 * 60 * NS)
    recipients: dict[str, str] = ctx.state["recipients"]
    offers = {o.key: o for o in CONSENT_OFFERS}
    devices = devices_of(ctx)
    ev_keys: dict[int, SigningKey] = ctx.state.get("ev_keys", {})
    clients = clients_of(ctx)
    counts = {"records": 0, "devices": 0, "sign_ins": 0}
    lock = threading.Lock()
    valid_until = ctx.clock.at(365 * 24 * HOUR_NS)
    specs: dict[int, list[DeviceSpec]] = {}
    for spec in ctx.city.devices():
        if spec.owner is not None:
            specs.setdefault(spec.owner, []).append(spec)

    def one(state: CitizenState) -> None:
        c = state.citizen
        headers = sign_in(ctx, state, "consent", "consent")
        with lock:
            counts["sign_ins"] += 1
        for key in c.consents:
            offer = offers[key]
            body = expect_json(
                ctx.http.post(
                    "/consent/records",
                    json={
                        "notice": NOTICE,
                        "language": "en",
                        "purposes": list(offer.purposes),
                        "categories": list(offer.categories),
                        "recipients": [recipients[offer.recipient]],
                        "jurisdiction": "AT",
                        "valid_until_ns": valid_until,
                    },
                    headers=headers,
                ),
                "give consent",
            )
            state.records[key] = body["record"]["id"]
            with lock:
                counts["records"] += 1
        for spec in specs.get(c.index, []):
            device_key = ev_keys.get(c.index) if spec.device_key.startswith("ev-") else None
            device_key = device_key or SigningKey.generate()
            payload: dict[str, Any] = {
                "public_key": b64u(bytes(device_key.verify_key)),
                "kind": "personal",
                "name": spec.device_key,
            }
            if state.account_id is not None:
                payload["reward_account_id"] = str(state.account_id)
            body = expect_json(
                ctx.http.post("/sensors/devices", json=payload, headers=headers), "register device"
            )
            with lock:
                devices[spec.device_key] = DeviceState(
                    spec, device_key, body["device_id"], body["client_id"], body["client_secret"]
                )
                clients.add(f"device:{spec.device_key}", body["client_id"], body["client_secret"])
                counts["devices"] += 1

    ctx.map("consent and devices", [s for s in citizens_of(ctx) if s.wallet is not None], one)
    fig.set("sign_ins", counts["sign_ins"])
    fig.set("consent_records_given", counts["records"])
    fig.set("personal_devices", counts["devices"])


def withdraw_consent(ctx: DemoContext, fig: PhaseFigures) -> None:
    """At 12:30 some citizens withdraw some of their consent (`POST /consent/records/{id}/withdraw`):
    readings after that are dropped unless another consent covers them."""
    ctx.clock.advance_to(12 * HOUR_NS + 30 * 60 * NS)
    states = [s for s in citizens_of(ctx) if s.citizen.withdraws and s.records]
    count = {"withdrawn": 0, "sign_ins": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        headers = sign_in(ctx, state, "consent", "consent")
        with lock:
            count["sign_ins"] += 1
        for key in state.citizen.withdraws:
            body = expect_json(
                ctx.http.post(f"/consent/records/{state.records[key]}/withdraw", headers=headers),
                "withdraw consent",
            )
            if body["record"]["status"] != "withdrawn":
                raise ApiError(f"withdrawal left the record {body['record']['status']}")
            with lock:
                count["withdrawn"] += 1

    ctx.map("withdrawals", states, one)
    fig.set("sign_ins", count["sign_ins"])
    fig.set("citizens_withdrawing", len(states))
    fig.set("consent_records_withdrawn", count["withdrawn"])


def register_public_sensors(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The operator registers the city's public sensors; each becomes an OAuth2 client."""
    clients = clients_of(ctx)
    specs = [d for d in ctx.city.devices() if d.kind == "public"]
    devices = devices_of(ctx)

    def one(spec: DeviceSpec) -> None:
        key = SigningKey.generate()
        body = expect_json(
            ctx.http.post(
                "/sensors/devices",
                json={
                    "public_key": b64u(bytes(key.verify_key)),
                    "kind": "public",
                    "name": f"city sensor {spec.device_key}",
                    "serial": spec.device_key,
                },
                headers=clients.headers("operator"),
            ),
            "register public sensor",
        )
        devices[spec.device_key] = DeviceState(
            spec, key, body["device_id"], body["client_id"], body["client_secret"]
        )
        clients.add(f"device:{spec.device_key}", body["client_id"], body["client_secret"])

    ctx.map("public sensors", specs, one)
    fig.set("public_sensors", len(specs))


def _stream_window(ctx: DemoContext, fig: PhaseFigures, window: tuple[int, int], label: str) -> None:
    """Every registered device sends the readings of one window as signed batches (the clock is
    first moved past the window's end, so no reading is from the future)."""
    from consent.batches import Batch, Reading, sign_batch

    ctx.clock.advance_to(window[1] + 30 * NS)
    clients = clients_of(ctx)
    devices = sorted(devices_of(ctx).values(), key=lambda d: d.spec.device_key)
    totals: dict[str, int] = {}
    lock = threading.Lock()

    def one(device: DeviceState) -> None:
        readings = device.spec.readings(window)
        if not readings:
            return
        headers = clients.headers(f"device:{device.spec.device_key}")
        for part in range(0, len(readings), MAX_BATCH_READINGS):
            chunk = readings[part : part + MAX_BATCH_READINGS]
            batch_id = uuid.uuid5(uuid.NAMESPACE_URL, f"civitas-demo:{device.device_id}:{label}:{part}").int
            batch = Batch(
                batch_id,
                device.device_id,
                ctx.clock(),
                tuple(Reading(r.stream, ctx.clock.at(r.offset_ns), r.value, r.lat, r.lon) for r in chunk),
            )
            envelope = sign_batch(batch, device.key).to_envelope()
            result = expect_json(
                ctx.http.post("/sensors/readings", json=envelope, headers=headers), "send readings"
            )
            kind = device.spec.kind
            with lock:
                for key in ("readings", "accepted", "dropped", "reward_micros"):
                    totals[key] = totals.get(key, 0) + int(result.get(key, 0))
                totals[f"{kind}_accepted"] = totals.get(f"{kind}_accepted", 0) + int(result["accepted"])
                totals[f"{kind}_sent"] = totals.get(f"{kind}_sent", 0) + int(result["readings"])
                totals["batches"] = totals.get("batches", 0) + 1

    ctx.map(f"readings ({label})", devices, one)
    fig.set("batches", totals.get("batches", 0))
    fig.set("readings_sent", totals.get("readings", 0))
    fig.set("readings_accepted", totals.get("accepted", 0))
    fig.set("readings_dropped", totals.get("dropped", 0))
    fig.set("personal_accepted", totals.get("personal_accepted", 0))
    fig.set("public_accepted", totals.get("public_accepted", 0))
    fig.set("rewards_paid_micros", totals.get("reward_micros", 0))
    fig.set("personal_sent", totals.get("personal_sent", 0))
    ctx.state["rewards_reported_micros"] = ctx.state.get("rewards_reported_micros", 0) + totals.get(
        "reward_micros", 0
    )


def stream_morning(ctx: DemoContext, fig: PhaseFigures) -> None:
    _stream_window(ctx, fig, MORNING, "morning")


def stream_afternoon(ctx: DemoContext, fig: PhaseFigures) -> None:
    _stream_window(ctx, fig, AFTERNOON, "afternoon")
