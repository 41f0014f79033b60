from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from identity import jose, sdjwt, status_list
from identity import tables as t
from identity.issuer import PRE_AUTH_GRANT, IssuanceError, make_proof

from .issuer_support import ISSUER_ID, RAW_CLAIMS, RESIDENT_VCT, FakeClock, make_issuer


def _grant_and_nonce(issuer, clock):  # type: ignore[no-untyped-def]
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="citizen-42")
    grant = issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    return created, grant, issuer.new_nonce()


def test_offer_object_and_metadata(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="citizen-42")
    assert created.offer["credential_issuer"] == ISSUER_ID
    assert created.offer["credential_configuration_ids"] == ["resident"]
    grant = created.offer["grants"][PRE_AUTH_GRANT]
    assert grant["pre-authorized_code"] == created.pre_authorized_code
    assert grant["tx_code"]["length"] == 6 and grant["tx_code"]["input_mode"] == "numeric"
    assert created.tx_code is not None and created.tx_code.isdigit()
    meta = issuer.metadata()
    conf = meta["credential_configurations_supported"]["resident"]
    assert conf["format"] == "dc+sd-jwt" and conf["vct"] == RESIDENT_VCT
    assert {"path": ["age_over_65"]} in conf["credential_metadata"]["claims"]
    assert meta["batch_credential_issuance"] == {"batch_size": 10}
    # Only hashes of the codes are stored.
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.offers)).mappings().one()
    assert created.pre_authorized_code not in json.dumps({k: str(v) for k, v in row.items()})


def test_batch_issuance_unlinkable_copies(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    _, grant, nonce = _grant_and_nonce(issuer, clock)
    holders = [jose.generate_ed25519() for _ in range(3)] + [jose.generate_ec_p256()]
    proofs = [make_proof(h, audience=ISSUER_ID, nonce=nonce, iat=clock.s) for h in holders]
    creds = issuer.issue(grant.offer_id, proofs)
    assert len(creds) == 4
    helds = [sdjwt.parse(c, issuer_jwk=issuer.public_jwk) for c in creds]
    # every copy: own holder key, own status slot, own signature and salts
    assert len({json.dumps(h.payload["cnf"]) for h in helds}) == 4
    assert len({json.dumps(h.payload["status"]) for h in helds}) == 4
    assert len({h.jwt.split(".")[2] for h in helds}) == 4
    assert len({d.digest for h in helds for d in h.disclosures}) == sum(len(h.disclosures) for h in helds)
    claims = helds[0].claims
    assert claims["vct"] == RESIDENT_VCT and claims["iss"] == ISSUER_ID
    assert claims["age_over_65"] is True and claims["age_over_18"] is True
    assert claims["resident_of"] == "civitas" and claims["concession"] == "senior"
    assert claims["address"]["locality"] == "Civitas"
    # nested address members are disclosable one by one
    assert ("address", "locality") in {d.path for d in helds[0].disclosures}
    # the holder can present with each key; the verifier accepts
    pres = sdjwt.present(
        helds[3], disclose=[("age_over_65",)], holder_key=holders[3], audience="a", nonce="n", iat=clock.s
    )
    out = sdjwt.verify_presentation(
        pres, issuer_jwk=issuer.public_jwk, expected_audience="a", expected_nonce="n", now=clock.s
    )
    assert out["age_over_65"] is True and "birthdate" not in out


def test_pre_authorized_code_single_use_and_expiry(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="s")
    issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    with pytest.raises(IssuanceError, match="already used") as info:
        issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    assert info.value.error == "invalid_grant"
    late = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="s")
    clock.advance(601)
    with pytest.raises(IssuanceError, match="expired"):
        issuer.redeem_pre_authorized_code(late.pre_authorized_code, late.tx_code)
    with pytest.raises(IssuanceError, match="unknown"):
        issuer.redeem_pre_authorized_code("nope", "123456")


def test_tx_code_attempts_are_limited(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="s")
    wrong = "000000" if created.tx_code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(IssuanceError, match="wrong tx_code"):
            issuer.redeem_pre_authorized_code(created.pre_authorized_code, wrong)
    with pytest.raises(IssuanceError, match="too many"):
        issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.offers.c.tx_code_attempts)).scalar() == 5
        assert conn.execute(sa.select(t.offers.c.redeemed_ns)).scalar() is None


def test_offer_without_tx_code(engine: sa.Engine) -> None:
    issuer = make_issuer(engine, FakeClock())
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="s", with_tx_code=False)
    assert created.tx_code is None and "tx_code" not in created.offer["grants"][PRE_AUTH_GRANT]
    assert issuer.redeem_pre_authorized_code(created.pre_authorized_code, None).configuration_id == "resident"


def test_offer_validation(engine: sa.Engine) -> None:
    issuer = make_issuer(engine, FakeClock())
    with pytest.raises(IssuanceError, match="unknown_credential_configuration"):
        issuer.create_offer("nope", RAW_CLAIMS, subject_ref="s")
    with pytest.raises(IssuanceError, match="may not set"):
        issuer.create_offer("resident", {"vct": "x"}, subject_ref="s")


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        ({"aud": "https://other.example"}, "invalid_proof"),
        ({"nonce": "not-issued"}, "invalid_nonce"),
        ({"iat_offset": -1000}, "invalid_proof"),
    ],
)
def test_proof_checks(engine: sa.Engine, mutate: dict[str, object], error: str) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    _, grant, nonce = _grant_and_nonce(issuer, clock)
    holder = jose.generate_ed25519()
    proof = make_proof(
        holder,
        audience=str(mutate.get("aud", ISSUER_ID)),
        nonce=str(mutate.get("nonce", nonce)),
        iat=clock.s + int(mutate.get("iat_offset", 0)),  # type: ignore[call-overload]
    )
    with pytest.raises(IssuanceError) as info:
        issuer.issue(grant.offer_id, [proof])
    assert info.value.error == error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.issued_credentials)).scalar() == 0


def test_proof_structure_checks(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    _, grant, nonce = _grant_and_nonce(issuer, clock)
    holder = jose.generate_ed25519()
    payload = json.dumps({"aud": ISSUER_ID, "iat": clock.s, "nonce": nonce}).encode()
    no_typ = jose.sign_compact({"jwk": jose.public_jwk(holder)}, payload, holder)
    private_jwk = jose.sign_compact({"typ": "openid4vci-proof+jwt", "jwk": holder}, payload, holder)
    other_key = jose.sign_compact(
        {"typ": "openid4vci-proof+jwt", "jwk": jose.public_jwk(jose.generate_ed25519())}, payload, holder
    )
    for bad in (no_typ, private_jwk, other_key, "x.y.z", "nope"):
        with pytest.raises(IssuanceError) as info:
            issuer.issue(grant.offer_id, [bad])
        assert info.value.error == "invalid_proof"


def test_nonce_single_use_and_batch_rules(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock, batch_size=3)
    _, grant, nonce = _grant_and_nonce(issuer, clock)
    h = jose.generate_ed25519()
    same_key = [make_proof(h, audience=ISSUER_ID, nonce=nonce, iat=clock.s)] * 2
    with pytest.raises(IssuanceError, match="own holder key"):
        issuer.issue(grant.offer_id, same_key)
    too_many = [
        make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=nonce, iat=clock.s) for _ in range(4)
    ]
    with pytest.raises(IssuanceError, match="at most 3"):
        issuer.issue(grant.offer_id, too_many)
    other_nonce = issuer.new_nonce()
    mixed = [
        make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=nonce, iat=clock.s),
        make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=other_nonce, iat=clock.s),
    ]
    with pytest.raises(IssuanceError, match="same c_nonce"):
        issuer.issue(grant.offer_id, mixed)
    ok = [make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=nonce, iat=clock.s)]
    assert len(issuer.issue(grant.offer_id, ok)) == 1
    with pytest.raises(IssuanceError, match="already issued"):
        issuer.issue(
            grant.offer_id,
            [make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=other_nonce, iat=clock.s)],
        )
    # the nonce was consumed by the successful request
    _, grant2, _ = _grant_and_nonce(issuer, clock)
    with pytest.raises(IssuanceError) as info:
        issuer.issue(
            grant2.offer_id,
            [make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=nonce, iat=clock.s)],
        )
    assert info.value.error == "invalid_nonce"


def test_unredeemed_or_expired_access_refused(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="s")
    nonce = issuer.new_nonce()
    proof = make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=nonce, iat=clock.s)
    with pytest.raises(IssuanceError) as info:
        issuer.issue(created.offer_id, [proof])
    assert info.value.error == "invalid_token"
    grant = issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    clock.advance(601)
    proof = make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=issuer.new_nonce(), iat=clock.s)
    with pytest.raises(IssuanceError, match="expired"):
        issuer.issue(grant.offer_id, [proof])


def test_revocation_reaches_the_status_list(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    _, grant, nonce = _grant_and_nonce(issuer, clock)
    creds = issuer.issue(
        grant.offer_id,
        [make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=nonce, iat=clock.s) for _ in range(2)],
    )
    batch = issuer.batch_of_offer(grant.offer_id)
    assert batch is not None
    refs = [status_list.parse_status_claim(sdjwt.parse(c).payload["status"]) for c in creds]

    def fetch(uri: str) -> str:
        return issuer.status_list_token(int(uri.rsplit("/", 1)[1]))

    def statuses() -> list[int]:
        checker = status_list.StatusChecker(fetch, lambda uri: issuer.public_jwk, clock=lambda: clock.s)
        return [checker.status({"status_list": {"idx": i, "uri": u}}) for i, u in refs]

    assert statuses() == [0, 0]
    assert issuer.set_status(batch, status_list.SUSPENDED) == 2
    assert statuses() == [2, 2]
    issuer.set_status(batch, status_list.VALID)
    assert statuses() == [0, 0]
    issuer.set_status(batch, status_list.INVALID)
    assert statuses() == [1, 1]
    with pytest.raises(IssuanceError, match="cannot be reinstated"):
        issuer.set_status(batch, status_list.VALID)
    with pytest.raises(IssuanceError) as info:
        issuer.set_status(12345, status_list.INVALID)
    assert info.value.status == 404


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_nonces_are_stateless_until_used(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock)
    nonces = {issuer.new_nonce() for _ in range(50)}
    assert len(nonces) == 50 and _count(engine, t.nonces) == 0  # issuing a nonce writes nothing
    nonce = nonces.pop()
    assert len(jose.b64u_decode(nonce)) == 41

    def attempt(value: str, *, offer: Any = None) -> IssuanceError | list[str]:
        grant = offer or _grant_and_nonce(issuer, clock)[1]
        proof = make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=value, iat=clock.s)
        try:
            return issuer.issue(grant.offer_id, [proof])
        except IssuanceError as exc:
            return exc

    raw = bytearray(jose.b64u_decode(nonce))
    for i in (0, 5, 20, len(raw) - 1):  # version, expiry, random part, tag
        forged = bytearray(raw)
        forged[i] ^= 1
        refused = attempt(jose.b64u_encode(bytes(forged)))
        assert isinstance(refused, IssuanceError) and refused.error == "invalid_nonce"
    other_issuer = make_issuer(engine, clock)  # another signing key: another MAC key
    refused = attempt(other_issuer.new_nonce())
    assert isinstance(refused, IssuanceError) and refused.error == "invalid_nonce"
    for junk in ("", "x" * 200, "!!!!", jose.b64u_encode(b"\x01" * 40)):
        refused = attempt(junk)
        assert isinstance(refused, IssuanceError) and refused.error == "invalid_nonce"
    assert _count(engine, t.nonces) == 0  # refused requests record nothing

    assert isinstance(attempt(nonce), list)
    assert _count(engine, t.nonces) == 1  # recorded on use...
    replay = attempt(nonce)
    assert isinstance(replay, IssuanceError) and "already used" in replay.description
    # a refused request (here: the offer was already used) leaves the nonce unused
    _, grant, fresh = _grant_and_nonce(issuer, clock)
    assert isinstance(attempt(fresh, offer=grant), list)
    second = issuer.new_nonce()
    refused = attempt(second, offer=grant)
    assert isinstance(refused, IssuanceError) and refused.error == "invalid_credential_request"
    assert isinstance(attempt(second), list)


def test_nonce_expiry_edge_and_purge(engine: sa.Engine) -> None:
    clock = FakeClock()
    issuer = make_issuer(engine, clock, nonce_ttl_s=300)
    used, late, edge = issuer.new_nonce(), issuer.new_nonce(), issuer.new_nonce()
    _, grant, _ = _grant_and_nonce(issuer, clock)
    proof = make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=used, iat=clock.s)
    issuer.issue(grant.offer_id, [proof])
    assert _count(engine, t.nonces) == 1
    clock.advance(299)
    _, grant, _ = _grant_and_nonce(issuer, clock)
    ok = make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=edge, iat=clock.s)
    assert issuer.issue(grant.offer_id, [ok])  # one second before expiry: accepted
    clock.advance(1)
    _, grant, _ = _grant_and_nonce(issuer, clock)
    proof = make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=late, iat=clock.s)
    with pytest.raises(IssuanceError, match="expired") as info:
        issuer.issue(grant.offer_id, [proof])
    assert info.value.error == "invalid_nonce"
    # the next use drops the records of expired nonces
    proof = make_proof(jose.generate_ed25519(), audience=ISSUER_ID, nonce=issuer.new_nonce(), iat=clock.s)
    issuer.issue(grant.offer_id, [proof])
    assert _count(engine, t.nonces) == 1
