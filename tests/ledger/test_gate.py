"""The account gate: one account per pseudonym per service, from real BBS pseudonym proofs."""

from __future__ import annotations

import pytest

from identity import bbs
from identity.bbs import pseudonym
from ledger.gate import (
    BbsPseudonymGate,
    BbsPseudonymPresentation,
    GateRefusedError,
    SubjectGate,
    account_id_for,
    owner_tag,
)

MESSAGES = [b"credential: city resident", b"district: north"]
HEADER = b"civitas-resident-v1"


@pytest.fixture(scope="module")
def issued() -> dict[str, object]:
    s = bbs.suite_for("BLS12_381_SHA_256", bbs.default_backend_name())
    sk = s.keygen(b"\x21" * 32, b"ledger-gate-tests")
    pk = s.sk_to_pk(sk)
    prover_nyms = pseudonym.generate_prover_nyms(s, 1)
    cwp, blind = pseudonym.nym_commit(s, prover_nyms)
    sig, entropy = pseudonym.blind_sign_with_nym(s, sk, pk, cwp, 1, HEADER, MESSAGES)
    secrets = pseudonym.verify_finalize_with_nym(
        s, pk, sig, HEADER, MESSAGES, (), prover_nyms, entropy, blind
    )
    assert secrets is not None
    return {"suite": s, "pk": pk, "sig": sig, "secrets": secrets, "blind": blind}


def present(w: dict[str, object], context: bytes) -> BbsPseudonymPresentation:
    proof, nym = pseudonym.proof_gen_with_nym(
        w["suite"], w["pk"], w["sig"], w["secrets"], context, HEADER, b"",  # type: ignore[arg-type]
        MESSAGES, (), [1], [], w["blind"],  # type: ignore[arg-type]
    )  # fmt: skip
    return BbsPseudonymPresentation(proof, nym, [MESSAGES[1]], [1])


def gate(w: dict[str, object], context: bytes) -> BbsPseudonymGate:
    return BbsPseudonymGate(w["suite"], w["pk"], context, header=HEADER, signer_message_count=2)  # type: ignore[arg-type]


def test_one_account_per_pseudonym_per_service(issued: dict[str, object]) -> None:
    a1, a2 = present(issued, b"civitas-ledger"), present(issued, b"civitas-ledger")
    assert a1.proof != a2.proof  # two presentations share no proof bytes
    g = gate(issued, b"civitas-ledger")
    n1, n2 = g.admit(a1).pseudonym, g.admit(a2).pseudonym
    assert n1 == n2
    assert account_id_for(n1, "civitas-ledger") == account_id_for(n2, "civitas-ledger")
    other = present(issued, b"parking-service")
    n3 = gate(issued, b"parking-service").admit(other).pseudonym
    assert n3 != n1 and account_id_for(n3, "parking-service") != account_id_for(n1, "civitas-ledger")


def test_refuses_forged_or_foreign_presentations(issued: dict[str, object]) -> None:
    g = gate(issued, b"civitas-ledger")
    good = present(issued, b"civitas-ledger")
    wrong_context = present(issued, b"parking-service")
    tampered = BbsPseudonymPresentation(
        good.proof[:-1] + bytes([good.proof[-1] ^ 1]), good.pseudonym, good.disclosed_messages, [1]
    )
    swapped_nym = BbsPseudonymPresentation(good.proof, wrong_context.pseudonym, good.disclosed_messages, [1])
    lie = BbsPseudonymPresentation(good.proof, good.pseudonym, [b"district: south"], [1])
    for bad in (wrong_context, tampered, swapped_nym, lie):
        with pytest.raises(GateRefusedError):
            g.admit(bad)
    with pytest.raises(GateRefusedError):
        g.admit("not a presentation")


def test_subject_gate_and_owner_tags() -> None:
    g = SubjectGate(prefix="nym:")
    assert g.admit("nym:abc").pseudonym == b"nym:abc"
    for bad in ("client-7", "nym:", 5):
        with pytest.raises(GateRefusedError):
            g.admit(bad)
    assert owner_tag("a") != owner_tag("b") and 0 < owner_tag("a") < (1 << 128) - 1
    with pytest.raises(GateRefusedError):
        account_id_for(b"", "svc")
