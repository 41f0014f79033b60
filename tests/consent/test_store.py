"""Consent store: events, current state, receipts and the Merkle log, on both databases."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from consent import eventlog
from consent import tables as t
from consent.receipts import KANTARA_VERSION, ReceiptError, verify_receipt
from consent.records import IllegalTransition, InvalidRecord, NoticeChanged
from consent.store import ConsentNotFound, ConsentStore
from consent.vocab import Status
from ledger import merkle
from ledger.note import NoteSigner, NoteVerifier, parse_checkpoint, verify_note

from .support import DAY, HOUR, NOTICE, NOTICE_V2, T0, Clock, device_key, receipt_signer, terms

KANTARA_FIELDS = {
    "version",
    "jurisdiction",
    "consentTimestamp",
    "collectionMethod",
    "consentReceiptID",
    "publicKey",
    "language",
    "piiPrincipalId",
    "piiControllers",
    "policyUrl",
    "services",
    "sensitive",
    "spiCat",
}
PURPOSE_FIELDS = {
    "purpose",
    "purposeCategory",
    "consentType",
    "piiCategory",
    "primaryPurpose",
    "termination",
    "thirdPartyDisclosure",
    "thirdPartyName",
}


def _event_count(store: ConsentStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar_one())


def test_give_and_withdraw_with_signed_receipts(store: ConsentStore, clock: Clock) -> None:
    given = store.give(terms(purposes=("dpv:PublicBenefit", "dpv:ResearchAndDevelopment")))
    clock.advance(HOUR)
    (withdrawn,) = store.withdraw(given.record_id, subject="pseudo-alice")
    assert withdrawn.status == Status.WITHDRAWN and withdrawn.at_ns == T0 + HOUR

    view = store.get(given.record_id)
    assert view.status == view.effective_status == Status.WITHDRAWN
    assert [e.status for e, _ in view.events] == [Status.GIVEN, Status.WITHDRAWN]

    public = receipt_signer().public_key
    for event in (given, withdrawn):
        claims = verify_receipt(store.receipt(event.receipt_id), public)
        assert set(claims) >= KANTARA_FIELDS
        assert claims["version"] == KANTARA_VERSION
        assert claims["piiPrincipalId"] == "pseudo-alice"
        assert claims["consentReceiptID"] == event.receipt_id
        assert claims["consentTimestamp"] == event.at_ns // 10**9
        assert claims["civitas"]["status"] == event.status.value
        assert claims["civitas"]["logIndex"] == event.log_index
        (service,) = claims["services"]
        assert service["service"] == "transport-agency"
        assert {p["purpose"] for p in service["purposes"]} == {
            "dpv:PublicBenefit",
            "dpv:ResearchAndDevelopment",
        }
        for purpose in service["purposes"]:
            assert set(purpose) == PURPOSE_FIELDS
            assert purpose["piiCategory"] == ["pd:Location"]
    assert claims["civitas"]["statusTerm"] == "dpv:ConsentWithdrawn"


def test_receipt_does_not_verify_with_another_key(store: ConsentStore) -> None:
    given = store.give(terms())
    with pytest.raises(ReceiptError):
        verify_receipt(given.receipt_jws, bytes(device_key(9).verify_key))
    body = given.receipt_jws.split(".")
    with pytest.raises(ReceiptError):
        verify_receipt(".".join([body[0], body[1][:-4] + "AAAA", body[2]]), receipt_signer().public_key)


def test_receipts_are_per_subject(store: ConsentStore) -> None:
    given = store.give(terms())
    with pytest.raises(ConsentNotFound):
        store.receipt(given.receipt_id, subject="pseudo-bob")
    assert store.receipt(given.receipt_id, subject="pseudo-alice") == given.receipt_jws


def test_withdraw_is_only_for_the_owner(store: ConsentStore) -> None:
    given = store.give(terms())
    with pytest.raises(ConsentNotFound):
        store.withdraw(given.record_id, subject="pseudo-bob")
    assert store.get(given.record_id).status == Status.GIVEN


def test_illegal_transition_changes_nothing(store: ConsentStore) -> None:
    given = store.give(terms())
    store.withdraw(given.record_id, subject="pseudo-alice")
    before = _event_count(store)
    with pytest.raises(IllegalTransition):
        store.withdraw(given.record_id, subject="pseudo-alice")
    with pytest.raises(IllegalTransition):
        store.renew(given.record_id, subject="pseudo-alice", valid_until_ns=T0 + 90 * DAY, notice=NOTICE)
    assert _event_count(store) == before
    assert store.get(given.record_id).status == Status.WITHDRAWN


def test_request_then_accept_or_refuse(store: ConsentStore, clock: Clock) -> None:
    a = store.request(terms())
    b = store.request(terms())
    assert store.get(a.record_id).status == Status.REQUESTED
    clock.advance(1)
    store.accept(a.record_id, subject="pseudo-alice")
    store.refuse(b.record_id, subject="pseudo-alice")
    assert store.get(a.record_id).permits_processing
    assert store.get(b.record_id).status == Status.REFUSED
    with pytest.raises(IllegalTransition):
        store.accept(b.record_id, subject="pseudo-alice")


def test_expiry_by_clock_then_renewal(store: ConsentStore, clock: Clock) -> None:
    given = store.give(terms(valid_until_ns=T0 + DAY))
    clock.now = T0 + DAY
    view = store.get(given.record_id)
    assert view.status == Status.GIVEN and view.effective_status == Status.EXPIRED
    assert not view.permits_processing
    clock.now = T0 + 2 * DAY
    events = store.renew(given.record_id, subject="pseudo-alice", valid_until_ns=T0 + 10 * DAY, notice=NOTICE)
    assert [e.status for e in events] == [Status.EXPIRED, Status.RENEWED]
    assert events[0].at_ns == T0 + DAY
    with store.engine.connect() as conn:
        intervals = conn.execute(
            sa.select(t.grants.c.start_ns, t.grants.c.end_ns).order_by(t.grants.c.start_ns)
        ).all()
    assert [tuple(r) for r in intervals] == [(T0, T0 + DAY), (T0 + 2 * DAY, T0 + 10 * DAY)]


def test_expire_due_writes_expired_events(store: ConsentStore, clock: Clock) -> None:
    a = store.give(terms(valid_until_ns=T0 + DAY))
    b = store.give(terms(valid_until_ns=T0 + 5 * DAY))
    clock.now = T0 + 2 * DAY
    written = store.expire_due()
    assert [(e.record_id, e.status, e.at_ns) for e in written] == [(a.record_id, Status.EXPIRED, T0 + DAY)]
    assert store.get(b.record_id).status == Status.GIVEN
    assert store.expire_due() == []


def test_changed_notice_starts_a_new_request(store: ConsentStore, clock: Clock) -> None:
    old = store.give(terms())
    withdrawn = store.give(terms(subject="pseudo-bob"))
    store.withdraw(withdrawn.record_id, subject="pseudo-bob")
    clock.advance(HOUR)
    with pytest.raises(NoticeChanged):
        store.renew(old.record_id, subject="pseudo-alice", valid_until_ns=T0 + 60 * DAY, notice=NOTICE_V2)
    requests = store.change_notice(controller="city-of-civitas", notice_id=NOTICE.notice_id, notice=NOTICE_V2)
    assert [r.status for r in requests] == [Status.REQUESTED]
    new = store.get(requests[0].record_id)
    assert new.supersedes == old.record_id and new.terms.notice == NOTICE_V2
    assert new.terms.subject == "pseudo-alice" and not new.permits_processing
    # the old record is untouched; asking again does not duplicate the request
    assert store.get(old.record_id).status == Status.GIVEN
    assert (
        store.change_notice(controller="city-of-civitas", notice_id=NOTICE.notice_id, notice=NOTICE_V2) == []
    )
    store.accept(new.record_id, subject="pseudo-alice")
    assert store.get(new.record_id).permits_processing
    # giving under the new notice ends the record it replaces: one active record per consent
    assert store.get(old.record_id).status == Status.WITHDRAWN
    assert not store.get(old.record_id).permits_processing


def test_invalid_terms_change_nothing(store: ConsentStore, clock: Clock) -> None:
    with pytest.raises(InvalidRecord):
        store.give(terms(valid_until_ns=T0 - 1, valid_from_ns=T0 - 10))
    with pytest.raises(InvalidRecord):
        store.give(terms(purposes=("dpv:Marketing",)))
    assert _event_count(store) == 0


def test_event_log_is_a_verifiable_merkle_log(store: ConsentStore, clock: Clock) -> None:
    receipts = [store.give(terms(subject=f"pseudo-{i}")) for i in range(5)]
    clock.advance(1)
    receipts += store.withdraw(receipts[2].record_id, subject="pseudo-2")
    assert [r.log_index for r in receipts] == list(range(6))

    signer = NoteSigner(eventlog.LOG_ORIGIN, device_key(42))
    note = eventlog.checkpoint(store.engine, signer, now_ns=clock())
    body = parse_checkpoint(
        verify_note(note, [NoteVerifier.from_key(eventlog.LOG_ORIGIN, device_key(42).verify_key)]).text
    )
    assert body.size == 6

    with store.engine.connect() as conn:
        leaves = [
            bytes(x)
            for x in conn.execute(sa.select(t.events.c.leaf).order_by(t.events.c.log_index)).scalars()
        ]
        assert merkle.root([merkle.leaf_hash(x) for x in leaves]) == body.root_hash == eventlog.root(conn)
        for r in receipts:
            index, leaf = store.event_leaf(r.receipt_id)
            assert json.loads(leaf)["receipt_id"] == r.receipt_id
            proof = eventlog.inclusion_proof(conn, index, body.size)
            assert merkle.verify_inclusion(merkle.leaf_hash(leaf), index, body.size, proof, body.root_hash)
            assert not merkle.verify_inclusion(
                merkle.leaf_hash(leaf + b" "), index, body.size, proof, body.root_hash
            )
        old_root = eventlog.root(conn, 3)
        proof = eventlog.consistency_proof(conn, 3, 6)
        assert merkle.verify_consistency(3, 6, proof, old_root, body.root_hash)


def test_records_keep_no_name_only_the_pseudonym(store: ConsentStore) -> None:
    store.give(terms())
    columns = {c.name for table in t.TABLES for c in table.columns}
    assert not {"name", "birthdate", "address", "email", "serial_number"} & (columns - {"name"})
    assert "serial" in {c.name for c in t.devices.columns}
    assert "serial" not in {c.name for c in t.readings.columns}
    assert "device_id" not in {c.name for c in t.readings.columns}


def test_list_for_subject(store: ConsentStore) -> None:
    a = store.give(terms())
    store.give(terms(subject="pseudo-bob"))
    assert [v.record_id for v in store.list_for_subject("pseudo-alice")] == [a.record_id]
    with pytest.raises(ConsentNotFound):
        store.get(a.record_id, subject="pseudo-bob")


def test_many_givers_share_one_log(cengine: sa.Engine) -> None:
    clock = Clock()
    a = ConsentStore(cengine, signer=receipt_signer(), clock=clock)
    b = ConsentStore(cengine, signer=receipt_signer(), clock=clock)
    ra = a.give_many([terms(subject=f"a{i}") for i in range(3)])
    rb = b.give(terms(subject="b"))
    assert [r.log_index for r in [*ra, rb]] == [0, 1, 2, 3]
