"""Consent and sensor-sharing API: citizens' consent records, receipts and access log; device
registration and signed reading ingest; agencies' consent-filtered pulls.

Scopes: `consent` (a citizen: the token's subject is their pseudonym), `sensors:ingest` (a
device's OAuth2 client), `sensors:read` (an agency), `consent:admin` (the city operator as the
controller: notice versions, revocation, public sensors, recipients and their declared purposes). Consent rule violations map to problem+json:
invalid record 422, illegal transition / changed notice 409, batch too large 413, malformed
batch 422, bad batch signature 403, undeclared purpose 403. A refused request changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

import consent
from civitas.auth import Principal, require_scope
from civitas.clients import add_client
from civitas.deps import ClockDep, EngineDep, KeysDep
from civitas.errors import ProblemError
from civitas.keys import KeyStore
from consent import eventlog
from consent.batches import MAX_BATCH_BYTES
from consent.devices import check_registration, device_for_client
from consent.records import ConsentError, ConsentTerms, InvalidRecord, Notice
from consent.sharing import MAX_PAGE, InvalidCursor
from consent.store import RecordView
from ledger.note import NoteSigner, parse_checkpoint, parse_note

router = APIRouter(tags=["consent"])

CitizenDep = Annotated[Principal, require_scope("consent")]
DeviceDep = Annotated[Principal, require_scope("sensors:ingest")]
AgencyDep = Annotated[Principal, require_scope("sensors:read")]
AdminDep = Annotated[Principal, require_scope("consent:admin")]

CONTROLLER = "city-of-civitas"
DEFAULT_WITHDRAWAL = "POST /consent/records/{id}/withdraw (wallet app: one tap)"


# -- service wiring -------------------------------------------------------------------------


def setup(app: FastAPI) -> None:
    """Attach the consent gateway holder (the gateway is built on first use, see `_gateway`)."""
    app.state.consent_gateway = None
    app.state.consent_gateway_lock = threading.Lock()
    if not hasattr(app.state, "consent_rewards"):
        settings = app.state.settings
        app.state.consent_rewards = (
            consent.RewardConfig(
                incentive_account_id=settings.reward_incentive_account_id,
                rates_micros=dict(settings.reward_rates_micros),
            )
            if settings.reward_incentive_account_id is not None
            else None
        )


def _gateway(request: Request) -> consent.Gateway:
    state = request.app.state
    gateway: consent.Gateway | None = state.consent_gateway
    if gateway is not None:
        return gateway
    with state.consent_gateway_lock:
        if state.consent_gateway is None:
            rewards: consent.RewardConfig | None = getattr(state, "consent_rewards", None)
            ledger = getattr(state, "ledger", None)
            payer = consent.RewardPayer(state.engine, ledger, rewards) if rewards and ledger else None
            config = consent.GatewayConfig(rewards=rewards if payer is not None else None)
            state.consent_gateway = consent.Gateway(
                state.engine, clock=state.clock, config=config, payer=payer
            )
        built: consent.Gateway = state.consent_gateway
        return built


def _store(engine: sa.Engine, keys: KeyStore, clock: Any) -> consent.ConsentStore:
    key = keys.current("service")
    signer = consent.ReceiptSigner(key.signing_key(), key.kid)
    return consent.ConsentStore(engine, signer=signer, clock=clock)


@contextmanager
def _problems() -> Iterator[None]:
    """Translate consent errors into problem+json."""
    try:
        yield
    except consent.BatchTooLarge as exc:
        raise ProblemError(413, "batch-too-large", "Batch too large", str(exc)) from exc
    except consent.BadSignature as exc:
        raise ProblemError(403, "bad-batch-signature", "Batch signature rejected", str(exc)) from exc
    except consent.InvalidBatch as exc:
        raise ProblemError(422, "invalid-batch", "Invalid reading batch", str(exc)) from exc
    except consent.NoticeChanged as exc:
        raise ProblemError(409, "notice-changed", "The notice changed", str(exc)) from exc
    except consent.IllegalTransition as exc:
        raise ProblemError(
            409, "illegal-transition", "Not allowed in the record's current status", str(exc)
        ) from exc
    except consent.ConsentNotFound as exc:
        raise ProblemError(404, "not-found", "Not found", str(exc)) from exc
    except consent.PurposeNotDeclared as exc:
        raise ProblemError(403, "purpose-not-declared", "Purpose not declared", str(exc)) from exc
    except InvalidCursor as exc:
        raise ProblemError(422, "invalid-cursor", "Invalid cursor", str(exc)) from exc
    except consent.DeviceError as exc:
        raise ProblemError(422, "invalid-device", "Invalid device registration", str(exc)) from exc
    except (InvalidRecord, ConsentError) as exc:
        raise ProblemError(422, "invalid-consent-record", "Invalid consent record", str(exc)) from exc


# -- models ---------------------------------------------------------------------------------


class NoticeIn(BaseModel):
    id: str = Field(min_length=1, max_length=200, examples=["https://civitas.city/notices/sensors"])
    version: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the notice content, hex")


class ConsentIn(BaseModel):
    notice: NoticeIn
    language: str = Field(default="en", max_length=35)
    purposes: list[str] = Field(min_length=1, max_length=32, examples=[["dpv:PublicBenefit"]])
    categories: list[str] = Field(min_length=1, max_length=32, examples=[["pd:Location"]])
    recipients: list[str] = Field(min_length=1, max_length=32, examples=[["transport-agency"]])
    jurisdiction: str = Field(default="EU", max_length=8)
    retention_s: int = Field(default=90 * 86_400, gt=0)
    valid_from_ns: int | None = Field(default=None, ge=0, description="default: now")
    valid_until_ns: int = Field(gt=0)


class RenewIn(BaseModel):
    notice: NoticeIn
    valid_until_ns: int = Field(gt=0)


class AnswerIn(BaseModel):
    notice: NoticeIn = Field(description="the notice shown to the citizen; must be the request's own")


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200, examples=["sensor programme ended"])


class EnvelopeIn(BaseModel):
    payload: str = Field(max_length=(MAX_BATCH_BYTES * 4) // 3 + 4, description="base64url payload bytes")
    signature: str = Field(max_length=100, description="base64url Ed25519 signature")


class DeviceIn(BaseModel):
    public_key: str = Field(max_length=64, description="base64url raw Ed25519 public key (32 bytes)")
    kind: consent.DeviceKind = consent.DeviceKind.PERSONAL
    serial: str | None = Field(default=None, max_length=128)
    reward_account_id: str | None = Field(
        default=None, pattern=r"^[0-9]{1,39}$", description="ledger account id (decimal u128)"
    )
    name: str = Field(default="sensor device", max_length=100)


class RecipientIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    purposes: list[str] = Field(min_length=1, max_length=32)


def _notice(n: NoticeIn) -> Notice:
    return Notice(n.id, n.version, n.sha256)


def _record_json(view: RecordView) -> dict[str, Any]:
    terms = view.terms
    return {
        "id": consent.format_id(view.record_id),
        "schema_version": terms.schema_version,
        "subject": terms.subject,
        "controller": terms.controller,
        "notice": {
            "id": terms.notice.notice_id,
            "version": terms.notice.version,
            "sha256": terms.notice.content_sha256,
        },
        "language": terms.language,
        "purposes": sorted(terms.purposes),
        "categories": sorted(terms.categories),
        "recipients": sorted(terms.recipients),
        "legal_basis": terms.legal_basis,
        "retention_s": terms.retention_s,
        "jurisdiction": terms.jurisdiction,
        "withdrawal_method": terms.withdrawal_method,
        "valid_from_ns": terms.valid_from_ns,
        "valid_until_ns": view.current_until_ns,
        "status": view.effective_status.value,
        "status_term": view.effective_status.dpv,
        "permits_processing": view.permits_processing,
        "supersedes": consent.format_id(view.supersedes) if view.supersedes else None,
        "events": [
            {"status": e.status.value, "at_ns": e.at_ns, "receipt_id": receipt_id}
            for e, receipt_id in view.events
        ],
    }


def _receipts_json(receipts: list[consent.EventReceipt]) -> list[dict[str, Any]]:
    return [
        {
            "record_id": consent.format_id(r.record_id),
            "status": r.status.value,
            "at_ns": r.at_ns,
            "receipt_id": r.receipt_id,
            "log_index": r.log_index,
        }
        for r in receipts
    ]


def _record_id(text: str) -> int:
    try:
        return consent.parse_id(text)
    except InvalidRecord as exc:
        raise ProblemError(404, "not-found", "Not found", "no such consent record") from exc


# -- citizens -------------------------------------------------------------------------------


@router.post("/consent/records", status_code=201, summary="Give consent (citizen)")
def give_consent(
    body: ConsentIn, principal: CitizenDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    store = _store(engine, keys, clock)
    with _problems():
        terms = ConsentTerms(
            subject=principal.subject,
            controller=CONTROLLER,
            notice=_notice(body.notice),
            language=body.language,
            purposes=frozenset(body.purposes),
            categories=frozenset(body.categories),
            recipients=frozenset(body.recipients),
            jurisdiction=body.jurisdiction,
            retention_s=body.retention_s,
            withdrawal_method=DEFAULT_WITHDRAWAL,
            valid_from_ns=clock() if body.valid_from_ns is None else body.valid_from_ns,
            valid_until_ns=body.valid_until_ns,
        )
        receipt = store.give(terms)
        view = store.get(receipt.record_id)
    return {"record": _record_json(view), "receipts": _receipts_json([receipt])}


@router.get("/consent/records", summary="My consent records (citizen)")
def list_consents(
    principal: CitizenDep,
    engine: EngineDep,
    keys: KeysDep,
    clock: ClockDep,
    status: Annotated[
        consent.Status | None,
        Query(description="only records in this status (by the clock); `requested`: pending requests"),
    ] = None,
) -> dict[str, Any]:
    views = _store(engine, keys, clock).list_for_subject(principal.subject)
    if status is not None:
        views = [v for v in views if v.effective_status == status]
    return {"records": [_record_json(v) for v in views]}


@router.get("/consent/records/{record_id}", summary="One of my consent records (citizen)")
def get_consent(
    record_id: str, principal: CitizenDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    with _problems():
        view = _store(engine, keys, clock).get(_record_id(record_id), subject=principal.subject)
    return {"record": _record_json(view)}


@router.post("/consent/records/{record_id}/withdraw", summary="Withdraw consent: one call (citizen)")
def withdraw_consent(
    record_id: str, principal: CitizenDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    store = _store(engine, keys, clock)
    with _problems():
        receipts = store.withdraw(_record_id(record_id), subject=principal.subject)
        view = store.get(receipts[0].record_id)
    return {"record": _record_json(view), "receipts": _receipts_json(receipts)}


@router.post("/consent/records/{record_id}/renew", summary="Renew consent under the same notice (citizen)")
def renew_consent(
    record_id: str, body: RenewIn, principal: CitizenDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    store = _store(engine, keys, clock)
    with _problems():
        receipts = store.renew(
            _record_id(record_id),
            subject=principal.subject,
            valid_until_ns=body.valid_until_ns,
            notice=_notice(body.notice),
        )
        view = store.get(receipts[0].record_id)
    return {"record": _record_json(view), "receipts": _receipts_json(receipts)}


@router.post(
    "/consent/records/{record_id}/give", summary="Give consent to a pending request: one call (citizen)"
)
def give_requested_consent(
    record_id: str, body: AnswerIn, principal: CitizenDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    """`requested` -> `given` under the request's notice (echoed in the body: a different one is
    409 `notice-changed`). A request made by a changed notice replaces the record it supersedes:
    that record is withdrawn in the same transaction (its receipt is in `receipts` too)."""
    store = _store(engine, keys, clock)
    rid = _record_id(record_id)
    with _problems():
        receipts = store.accept(rid, subject=principal.subject, notice=_notice(body.notice))
        view = store.get(rid)
    return {"record": _record_json(view), "receipts": _receipts_json(receipts)}


@router.post("/consent/records/{record_id}/refuse", summary="Refuse a pending request: one call (citizen)")
def refuse_consent(
    record_id: str, principal: CitizenDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    """`requested` -> `refused` (terminal). Refusing a changed notice also withdraws the record it
    supersedes, so nothing flows under either notice afterwards."""
    store = _store(engine, keys, clock)
    rid = _record_id(record_id)
    with _problems():
        receipts = store.refuse(rid, subject=principal.subject)
        view = store.get(rid)
    return {"record": _record_json(view), "receipts": _receipts_json(receipts)}


@router.get("/consent/receipts/{receipt_id}", summary="A signed consent receipt (citizen)")
def get_receipt(
    receipt_id: str, principal: CitizenDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    if len(receipt_id) > 36:
        raise ProblemError(404, "not-found", "Not found", "no such receipt")
    with _problems():
        jws = _store(engine, keys, clock).receipt(receipt_id, subject=principal.subject)
    return {"receipt_id": receipt_id, "jws": jws, "jwks": keys.public_jwks("service")}


@router.get("/consent/access-log", summary="Who received my data, for what (citizen)")
def get_access_log(
    principal: CitizenDep,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    entries = consent.access_log(engine, principal.subject, limit=limit)
    return {"entries": [e.to_json() for e in entries]}


def _log_signer(request: Request) -> tuple[NoteSigner, str]:
    parts = urlsplit(request.app.state.settings.public_url)
    origin = f"{parts.netloc}{parts.path.rstrip('/')}/consent-events"
    return NoteSigner(origin, request.app.state.keys.current("log").signing_key()), origin


@router.get(
    "/consent/log/checkpoint", summary="Signed checkpoint of the consent event log (C2SP signed note)"
)
def consent_log_checkpoint(request: Request, engine: EngineDep, clock: ClockDep) -> PlainTextResponse:
    signer, origin = _log_signer(request)
    note = eventlog.checkpoint(engine, signer, now_ns=clock(), origin=origin)
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@router.get("/consent/receipts/{receipt_id}/proof", summary="Inclusion proof of a receipt's event (citizen)")
def receipt_proof(
    receipt_id: str,
    principal: CitizenDep,
    request: Request,
    engine: EngineDep,
    keys: KeysDep,
    clock: ClockDep,
) -> dict[str, Any]:
    """The event's log leaf, its RFC 9162 inclusion proof and the signed checkpoint it proves into."""
    if len(receipt_id) > 36:
        raise ProblemError(404, "not-found", "Not found", "no such receipt")
    store = _store(engine, keys, clock)
    with _problems():
        store.receipt(receipt_id, subject=principal.subject)  # ownership check
        index, leaf = store.event_leaf(receipt_id)
    signer, origin = _log_signer(request)
    note = eventlog.checkpoint(engine, signer, now_ns=clock(), origin=origin)
    size = parse_checkpoint(parse_note(note).text).size
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        proof = eventlog.inclusion_proof(conn, index, size)
    b64 = base64.b64encode
    return {
        "log_index": index,
        "tree_size": size,
        "leaf": b64(leaf).decode(),
        "inclusion_proof": [b64(h).decode() for h in proof],
        "checkpoint": note,
    }


# -- devices --------------------------------------------------------------------------------


def _public_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ProblemError(
            422, "invalid-device", "Invalid device registration", "public_key is 32 bytes base64url"
        )
    return raw


@router.post(
    "/sensors/devices", status_code=201, summary="Register a device; returns its client credentials once"
)
def register_device(
    body: DeviceIn,
    principal: Annotated[Principal, require_scope()],
    engine: EngineDep,
    clock: ClockDep,
) -> dict[str, Any]:
    """A citizen (scope `consent`) registers a personal device they own; the operator (scope
    `consent:admin`) registers public city sensors. The device gets an OAuth2 client with the
    scope `sensors:ingest`; its secret is returned once."""
    public_key = _public_key(body.public_key)
    if body.kind == consent.DeviceKind.PERSONAL:
        if not principal.has("consent"):
            raise ProblemError(
                403, "insufficient-scope", "Insufficient scope", "personal devices need the scope consent"
            )
        owner: str | None = principal.subject
    else:
        if not principal.has("consent:admin"):
            raise ProblemError(
                403, "insufficient-scope", "Insufficient scope", "public sensors need consent:admin"
            )
        owner = None
        if body.reward_account_id is not None:
            raise ProblemError(
                422, "invalid-device", "Invalid device registration", "public sensors earn no rewards"
            )
    account = int(body.reward_account_id) if body.reward_account_id is not None else None
    with _problems():  # validate before creating the device's client: a refusal changes nothing
        check_registration(
            public_key=public_key, kind=body.kind, owner=owner, serial=body.serial, reward_account_id=account
        )
    client, secret = add_client(engine, body.name, "sensors:ingest", clock=clock)
    with _problems():
        device = consent.register_device(
            engine,
            public_key=public_key,
            kind=body.kind,
            owner=owner,
            client_id=client.client_id,
            serial=body.serial,
            reward_account_id=account,
            now_ns=clock(),
        )
    return {
        "device_id": device.device_id,
        "kind": device.kind.value,
        "client_id": client.client_id,
        "client_secret": secret,
    }


@router.post("/sensors/readings", summary="Ingest one signed batch of readings (device)")
def ingest_readings(
    body: EnvelopeIn, principal: DeviceDep, request: Request, engine: EngineDep
) -> dict[str, Any]:
    device = device_for_client(engine, principal.client_id)
    if device is None or not device.active:
        raise ProblemError(403, "unknown-device", "Unknown device", "this client is not a registered device")
    with _problems():
        signed = consent.SignedBatch.from_envelope(body.model_dump())
        (result,) = _gateway(request).ingest([signed], device_id=device.device_id)
    return result.to_json()


# -- agencies -------------------------------------------------------------------------------


@router.get("/sensors/shared", summary="Readings consent allows me to receive (agency)")
def shared_readings(
    principal: AgencyDep,
    engine: EngineDep,
    clock: ClockDep,
    purpose: Annotated[str, Query(min_length=1, max_length=64)],
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> dict[str, Any]:
    with _problems():
        page = consent.share_page(
            engine, recipient=principal.client_id, purpose=purpose, cursor=cursor, limit=limit, now_ns=clock()
        )
    return {
        "readings": [r.to_json() for r in page.readings],
        "next_cursor": page.next_cursor,
        "cursor": page.cursor,
    }


@router.post(
    "/consent/recipients", status_code=201, summary="Register an agency and its declared purposes (operator)"
)
def register_recipient(
    body: RecipientIn, principal: AdminDep, engine: EngineDep, clock: ClockDep
) -> dict[str, Any]:
    with _problems():
        consent.register_recipient(
            engine, client_id=body.client_id, name=body.name, purposes=body.purposes, now_ns=clock()
        )
    return {"client_id": body.client_id, "purposes": sorted(set(body.purposes))}


# -- controller (operator) ------------------------------------------------------------------


@router.post("/consent/notices", summary="Publish a new notice version: starts new requests (operator)")
def publish_notice(
    body: NoticeIn, principal: AdminDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    """A changed notice starts a new request: every record still permitting processing under an
    older version (or content) of notice `id` gets one `requested` record with the same terms
    under this version, naming the record it supersedes. Publishing the same version again
    creates nothing; a request still pending under an older version is superseded by the new
    one (giving it is then 409 `notice-changed`). The old records keep their scope until the
    citizen answers."""
    notice = _notice(body)
    with _problems():
        receipts = _store(engine, keys, clock).change_notice(
            controller=CONTROLLER, notice_id=notice.notice_id, notice=notice
        )
    return {"notice": body.model_dump(), "requests": _receipts_json(receipts)}


@router.post("/consent/records/{record_id}/revoke", summary="Revoke consent with a reason (operator)")
def revoke_consent(
    record_id: str, body: RevokeIn, principal: AdminDep, engine: EngineDep, keys: KeysDep, clock: ClockDep
) -> dict[str, Any]:
    """`given`/`renewed` -> `revoked` (terminal), controller side; the reason is carried in the
    signed receipt (`civitas.reason`). Processing stops from this moment on."""
    store = _store(engine, keys, clock)
    rid = _record_id(record_id)
    with _problems():
        receipts = store.revoke(rid, reason=body.reason)
        view = store.get(rid)
    return {"record": _record_json(view), "receipts": _receipts_json(receipts)}


__all__ = ["router", "setup"]
