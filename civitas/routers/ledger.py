"""Ledger HTTP API: pseudonymous accounts, batched transfers, signed checkpoints and proofs,
device allowances.

Scopes: `ledger:read` (own accounts, their transfers and balances), `ledger:write` (open one's own
account, transfer from own accounts, grant allowances, post/void reservations paid to own accounts),
`ledger:admin` (the operator: any account, any transfer), `ledger:pay` (a device's signed
allowance payment). A citizen is a caller whose token was issued to the wallet client: its subject
is their per-service pseudonym, their account id is derived from it (one account per citizen) and
they only ever see their own accounts. Checkpoints, the log key and proofs by leaf index are
public; an inclusion proof by transfer id is for whoever may see that transfer. Witnesses submit
cosignatures without a token: their signature, by a key in `CIVITAS_LEDGER_WITNESS_KEYS`, is the
credential.

128-bit ids, amounts, balances, `user_data_64` and timestamps are decimal strings in JSON (they
exceed what JSON numbers carry safely); u32/u16 fields are numbers. A batch holds at most 8190
transfers (413 beyond). Single transfers go through the group committer, so concurrent requests
share one durable commit. Results mirror TigerBeetle: one `{status, timestamp}` per event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from civitas.auth import PUBLIC_CLIENT_IDS, Principal, require_scope
from civitas.errors import ProblemError
from ledger import (
    AMOUNT_MAX,
    BATCH_MAX,
    Account,
    AccountBalance,
    AccountFlags,
    AllowanceError,
    Allowances,
    CreateAccountStatus,
    CreateTransferResult,
    GateRefusedError,
    Ledger,
    LedgerValueError,
    PaymentRequest,
    SubjectGate,
    Transfer,
    TransferFlags,
    account_id_for,
    merkle,
    owner_tag,
)
from ledger.allowances import Allowance
from ledger.cosignatures import MAX_WITNESSES, CosignatureError, Cosignatures
from ledger.proofs import transfer_inclusion_proof

router = APIRouter(prefix="/ledger", tags=["ledger"])

ReaderDep = Annotated[Principal, require_scope("ledger:read")]
WriterDep = Annotated[Principal, require_scope("ledger:write")]
DeviceDep = Annotated[Principal, require_scope("ledger:pay")]

CITIZEN_CODE = 1
U128 = Annotated[str, Field(pattern=r"^[0-9]{1,39}$", examples=["1"])]
U64 = Annotated[str, Field(pattern=r"^[0-9]{1,20}$", examples=["0"])]
IdPath = Annotated[str, Path(pattern=r"^[0-9]{1,39}$", description="decimal u128")]
U32 = Annotated[int, Field(ge=0, le=(1 << 32) - 1)]
U16 = Annotated[int, Field(ge=0, le=(1 << 16) - 1)]


# -- wiring ---------------------------------------------------------------------------------


def log_origin(public_url: str) -> str:
    """The log's C2SP origin: the service's host (and path) without scheme, plus `/ledger`."""
    parts = urlsplit(public_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/ledger"


def setup(app: FastAPI) -> None:
    """Open the ledger on the service's engine, signing checkpoints with the `log` key."""
    state = app.state
    if getattr(state, "ledger", None) is None:
        state.ledger = Ledger(
            state.engine,
            signing_key=state.keys.current("log").signing_key(),
            origin=log_origin(state.settings.public_url),
            clock=state.clock,
            create=False,
        )
    state.ledger_allowances = Allowances(state.ledger, clock=state.clock)
    state.ledger_cosignatures = Cosignatures(
        state.ledger, state.settings.ledger_witness_keys, clock=state.clock
    )
    state.ledger_gate = SubjectGate()


def _ledger(request: Request) -> Ledger:
    led: Ledger = request.app.state.ledger
    return led


def _allowances(request: Request) -> Allowances:
    al: Allowances = request.app.state.ledger_allowances
    return al


def _cosignatures(request: Request) -> Cosignatures:
    cs: Cosignatures = request.app.state.ledger_cosignatures
    return cs


def _is_admin(p: Principal) -> bool:
    return p.has("ledger:admin")


def _is_citizen(p: Principal) -> bool:
    return p.client_id in PUBLIC_CLIENT_IDS


# Paging of an account's transfers and balances: `after` is a ledger timestamp (ns, a signed
# 64-bit integer in storage), exclusive; beyond the largest one is refused, not looked up.
MAX_TIMESTAMP = (1 << 63) - 1
PageLimit = Annotated[int, Query(ge=1, le=1000)]
PageAfter = Annotated[str, Query(pattern=r"^[0-9]{1,19}$", description="timestamp (ns) to continue after")]


def _int(v: str, what: str, limit: int = (1 << 128) - 1) -> int:
    n = int(v)
    if n > limit:
        raise ProblemError(422, "invalid-field", "Invalid field", f"{what} is out of range")
    return n


# -- models ---------------------------------------------------------------------------------


class AccountIn(BaseModel):
    id: U128 | None = Field(default=None, description="operator only; citizens get a pseudonym-derived id")
    ledger: U32 = 1
    code: U16 = CITIZEN_CODE
    flags: U16 = 0
    owner: str | None = Field(default=None, max_length=200, description="operator only: owning subject")
    user_data_64: U64 = "0"
    user_data_32: U32 = 0


class AccountOut(BaseModel):
    id: str
    debits_pending: str
    debits_posted: str
    credits_pending: str
    credits_posted: str
    user_data_128: str
    user_data_64: str
    user_data_32: int
    ledger: int
    code: int
    flags: int
    timestamp: str


class TransferIn(BaseModel):
    id: U128
    debit_account_id: U128 = "0"
    credit_account_id: U128 = "0"
    amount: U128 = "0"
    pending_id: U128 = "0"
    user_data_128: U128 = "0"
    user_data_64: U64 = "0"
    user_data_32: U32 = 0
    timeout: U32 = 0
    ledger: U32 = 0
    code: U16 = 0
    flags: U16 = 0

    def to_transfer(self) -> Transfer:
        return Transfer(
            id=_int(self.id, "id"),
            debit_account_id=_int(self.debit_account_id, "debit_account_id"),
            credit_account_id=_int(self.credit_account_id, "credit_account_id"),
            amount=_int(self.amount, "amount", AMOUNT_MAX),
            pending_id=_int(self.pending_id, "pending_id"),
            user_data_128=_int(self.user_data_128, "user_data_128"),
            user_data_64=_int(self.user_data_64, "user_data_64", (1 << 64) - 1),
            user_data_32=self.user_data_32,
            timeout=self.timeout,
            ledger=self.ledger,
            code=self.code,
            flags=self.flags,
        )


class TransferOut(BaseModel):
    id: str
    debit_account_id: str
    credit_account_id: str
    amount: str
    pending_id: str
    user_data_128: str
    user_data_64: str
    user_data_32: int
    timeout: int
    ledger: int
    code: int
    flags: int
    timestamp: str


class TransfersIn(BaseModel):
    transfers: list[TransferIn] = Field(description=f"at most {BATCH_MAX} events, applied in order")


class ResultOut(BaseModel):
    status: str
    timestamp: str


class TransfersOut(BaseModel):
    results: list[ResultOut]


class CreateAccountOut(BaseModel):
    status: str
    account: AccountOut


class TransferPage(BaseModel):
    transfers: list[TransferOut]
    next_after: str | None = Field(description="pass as `after` for the next page; null at the end")


class BalanceOut(BaseModel):
    debits_pending: str
    debits_posted: str
    credits_pending: str
    credits_posted: str
    timestamp: str = Field(description="timestamp (ns) of the transfer after which these balances held")


class BalancePage(BaseModel):
    balances: list[BalanceOut]
    next_after: str | None = Field(description="pass as `after` for the next page; null at the end")


class InclusionProofOut(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="base64")
    proof: list[str] = Field(description="base64 hashes, leaf side first (RFC 9162)")


class ConsistencyProofOut(BaseModel):
    old_size: int
    new_size: int
    proof: list[str]


class TransferProofOut(BaseModel):
    transfer: TransferOut
    leaf_index: int
    tree_size: int
    leaf: str = Field(description="the transfer's 128-byte canonical encoding, base64")
    leaf_hash: str = Field(description="base64 SHA-256(0x00 || leaf)")
    proof: list[str] = Field(description="base64 hashes, leaf side first (RFC 9162)")
    checkpoint: str | None = Field(
        description="the signed checkpoint of tree_size with its collected cosignatures; "
        "null if the ledger stored none for that size"
    )


class LogKeyOut(BaseModel):
    origin: str
    verifier_key: str = Field(description="C2SP note verifier key")
    tree_size: int
    witness_keys: list[str] = Field(
        description="cosignature verifier keys of the witnesses this log collects cosignatures from "
        "(clients should pin the witnesses they trust themselves)"
    )


class CosignatureIn(BaseModel):
    checkpoint: str = Field(max_length=16384, description="the signed checkpoint note the witness cosigned")
    cosignature: str = Field(
        max_length=1000, description="the witness's cosignature/v1 line: `\u2014 <name> <base64>`"
    )


class CosignatureOut(BaseModel):
    status: str = Field(description="CREATED, or EXISTS when this witness had already cosigned the size")
    tree_size: int
    witness_key: str
    cosigned_at_s: int = Field(description="the stored cosignature's time (Unix seconds)")


class AllowanceIn(BaseModel):
    id: U128
    account_id: U128
    device_public_key: str = Field(min_length=43, max_length=44, description="Ed25519 public key, base64url")
    cap_micros: U64
    period_s: int = Field(ge=1, le=366 * 24 * 3600)
    expires_at_ns: U64
    code: U16 = 1


class AllowanceOut(BaseModel):
    id: str
    account_id: str
    device_public_key: str
    cap_micros: str
    period_ns: str
    starts_at_ns: str
    expires_at_ns: str
    revoked: bool
    spent_micros: str = Field(
        description="spent in the current period: payments and open reservations (expired ones no longer count)"
    )
    ledger: int
    code: int


class PaymentIn(BaseModel):
    allowance_id: U128
    request_id: U128
    amount_micros: U64
    payee_account_id: U128
    timestamp_ns: U64
    flags: U16 = 0
    timeout_s: U32 = 0
    signature: str = Field(min_length=86, max_length=88, description="device Ed25519 signature, base64url")


class ResolveIn(BaseModel):
    transfer_id: U128
    amount_micros: U128 | None = Field(default=None, description="post only; default: the whole reservation")


# -- conversions ----------------------------------------------------------------------------


def _account_out(a: Account) -> AccountOut:
    return AccountOut(
        id=str(a.id), debits_pending=str(a.debits_pending), debits_posted=str(a.debits_posted),
        credits_pending=str(a.credits_pending), credits_posted=str(a.credits_posted),
        user_data_128=str(a.user_data_128), user_data_64=str(a.user_data_64), user_data_32=a.user_data_32,
        ledger=a.ledger, code=a.code, flags=int(a.flags), timestamp=str(a.timestamp),
    )  # fmt: skip


def _transfer_out(t: Transfer) -> TransferOut:
    return TransferOut(
        id=str(t.id), debit_account_id=str(t.debit_account_id), credit_account_id=str(t.credit_account_id),
        amount=str(t.amount), pending_id=str(t.pending_id), user_data_128=str(t.user_data_128),
        user_data_64=str(t.user_data_64), user_data_32=t.user_data_32, timeout=t.timeout, ledger=t.ledger,
        code=t.code, flags=int(t.flags), timestamp=str(t.timestamp),
    )  # fmt: skip


def _balance_out(b: AccountBalance) -> BalanceOut:
    return BalanceOut(
        debits_pending=str(b.debits_pending), debits_posted=str(b.debits_posted),
        credits_pending=str(b.credits_pending), credits_posted=str(b.credits_posted), timestamp=str(b.timestamp),
    )  # fmt: skip


def _result_out(r: CreateTransferResult) -> ResultOut:
    return ResultOut(status=r.status.name, timestamp=str(r.timestamp))


def _allowance_out(a: Allowance, spent_micros: int) -> AllowanceOut:
    return AllowanceOut(
        id=str(a.id), account_id=str(a.account_id),
        device_public_key=base64.urlsafe_b64encode(a.device_public_key).rstrip(b"=").decode(),
        cap_micros=str(a.cap_micros), period_ns=str(a.period_ns), starts_at_ns=str(a.starts_at_ns),
        expires_at_ns=str(a.expires_at_ns), revoked=bool(a.revoked_at_ns), ledger=a.ledger, code=a.code,
        spent_micros=str(spent_micros),
    )  # fmt: skip


def _b64u(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ProblemError(422, "invalid-field", "Invalid field", f"{what} is not base64url") from None


def _owns(p: Principal, a: Account) -> bool:
    return a.user_data_128 == owner_tag(p.subject)


def _visible_account(led: Ledger, p: Principal, account_id: int) -> Account:
    found = led.lookup_accounts([account_id])
    if not found or not (_is_admin(p) or _owns(p, found[0])):
        raise ProblemError(404, "not-found", "Not found", "no such account")  # same answer: no existence leak
    return found[0]


def _allowance_problem(exc: AllowanceError) -> ProblemError:
    status = {
        "bad-signature": 403,
        "allowance-revoked": 403,
        "allowance-expired": 403,
        "allowance-not-started": 403,
        "stale-request": 403,
        "cap-exceeded": 409,
        "allowance-exists": 409,
        "unknown-allowance": 404,
        "unknown-reservation": 404,
        "unknown-account": 404,
    }.get(exc.reason, 422)
    return ProblemError(status, exc.reason, "Allowance refused", str(exc))


# -- accounts -------------------------------------------------------------------------------


@router.post(
    "/accounts",
    response_model=CreateAccountOut,
    status_code=201,
    summary="Open an account (citizens: their one pseudonymous account; operator: any account)",
)
def create_account(
    body: AccountIn, principal: WriterDep, request: Request, response: Response
) -> CreateAccountOut:
    led = _ledger(request)
    if _is_admin(principal):
        if body.id is None:
            raise ProblemError(
                422, "invalid-account", "Invalid account", "the operator must choose the account id"
            )
        account = Account(
            id=_int(body.id, "id"), ledger=body.ledger, code=body.code, flags=body.flags,
            user_data_128=owner_tag(body.owner) if body.owner else 0,
            user_data_64=_int(body.user_data_64, "user_data_64", (1 << 64) - 1), user_data_32=body.user_data_32,
        )  # fmt: skip
    elif _is_citizen(principal):
        if body.id is not None or body.owner is not None or body.flags:
            raise ProblemError(403, "forbidden", "Forbidden", "citizens cannot choose id, owner or flags")
        try:
            admission = request.app.state.ledger_gate.admit(principal.subject)
        except GateRefusedError as exc:
            raise ProblemError(403, "gate-refused", "Account refused", str(exc)) from exc
        account = Account(
            id=account_id_for(admission.pseudonym, led.origin), ledger=body.ledger, code=body.code,
            flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS, user_data_128=owner_tag(principal.subject),
        )  # fmt: skip
    else:
        raise ProblemError(403, "forbidden", "Forbidden", "only citizens and the operator open accounts")
    try:
        (result,) = led.create_accounts([account])
    except LedgerValueError as exc:
        raise ProblemError(422, "invalid-account", "Invalid account", str(exc)) from exc
    if result.status not in (CreateAccountStatus.CREATED, CreateAccountStatus.EXISTS):
        raise ProblemError(
            409 if result.status.name.startswith("EXISTS") else 422,
            "account-refused",
            "Account not created",
            result.status.name,
            status_name=result.status.name,
        )
    if result.status is CreateAccountStatus.EXISTS:
        response.status_code = 200
    (stored,) = led.lookup_accounts([account.id])
    return CreateAccountOut(status=result.status.name, account=_account_out(stored))


@router.get(
    "/accounts/{account_id}", response_model=AccountOut, summary="One account (own, or any for the operator)"
)
def get_account(account_id: IdPath, principal: ReaderDep, request: Request) -> AccountOut:
    return _account_out(_visible_account(_ledger(request), principal, _int(account_id, "account id")))


@router.get(
    "/accounts/{account_id}/transfers", response_model=TransferPage, summary="An account's transfers by time"
)
def get_account_transfers(
    account_id: IdPath,
    principal: ReaderDep,
    request: Request,
    limit: PageLimit = 100,
    after: PageAfter = "0",
    reverse: bool = False,
) -> TransferPage:
    led = _ledger(request)
    acc = _visible_account(led, principal, _int(account_id, "account id"))
    after_ns = _int(after, "after", MAX_TIMESTAMP)
    if reverse:
        rows = led.get_account_transfers(acc.id, limit=limit, before=after_ns, reverse=True)
    else:
        rows = led.get_account_transfers(acc.id, limit=limit, after=after_ns)
    nxt = str(rows[-1].timestamp) if len(rows) == limit else None
    return TransferPage(transfers=[_transfer_out(t) for t in rows], next_after=nxt)


@router.get(
    "/accounts/{account_id}/balances",
    response_model=BalancePage,
    summary="An account's balances after each of its transfers (accounts with the HISTORY flag)",
)
def get_account_balances(
    account_id: IdPath,
    principal: ReaderDep,
    request: Request,
    limit: PageLimit = 100,
    after: PageAfter = "0",
    reverse: bool = False,
    debits: Annotated[bool, Query(description="include transfers debiting the account")] = True,
    credits: Annotated[bool, Query(description="include transfers crediting the account")] = True,
) -> BalancePage:
    led = _ledger(request)
    acc = _visible_account(led, principal, _int(account_id, "account id"))
    after_ns = _int(after, "after", MAX_TIMESTAMP)
    # `after` is exclusive, as on /transfers: the next page starts one nanosecond past it.
    if reverse:
        if after_ns == 1:  # nothing is stamped before 1
            rows: list[AccountBalance] = []
        else:
            rows = led.get_account_balances(
                acc.id, limit=limit, timestamp_max=max(after_ns - 1, 0), debits=debits, credits=credits,
                reversed=True,
            )  # fmt: skip
    elif after_ns == MAX_TIMESTAMP:
        rows = []
    else:
        rows = led.get_account_balances(
            acc.id, limit=limit, timestamp_min=after_ns + 1 if after_ns else 0, debits=debits, credits=credits
        )
    nxt = str(rows[-1].timestamp) if len(rows) == limit else None
    return BalancePage(balances=[_balance_out(b) for b in rows], next_after=nxt)


# -- transfers ------------------------------------------------------------------------------


def _debits_own_citizen_account(led: Ledger, principal: Principal, transfers: list[Transfer]) -> bool:
    """Fast path: a citizen's own account id is derived from their pseudonym, no lookup needed."""
    if not _is_citizen(principal):
        return False
    own = account_id_for(principal.subject.encode(), led.origin)
    resolving = TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER
    return all(t.debit_account_id == own and not int(t.flags) & resolving for t in transfers)


def _check_ownership(led: Ledger, principal: Principal, transfers: list[Transfer]) -> None:
    """Non-operators may only debit their own accounts, and post/void reservations they pay or receive."""
    pending_ids = [
        t.pending_id
        for t in transfers
        if int(t.flags) & (TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER)
    ]
    pendings = {p.id: p for p in led.lookup_transfers(pending_ids)} if pending_ids else {}
    needed: dict[int, list[int]] = {}
    for i, t in enumerate(transfers):
        if int(t.flags) & (TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER):
            p = pendings.get(t.pending_id)
            if p is None:
                continue  # the ledger answers PENDING_TRANSFER_NOT_FOUND
            needed[i] = [p.debit_account_id, p.credit_account_id]
        else:
            needed[i] = [t.debit_account_id]
    ids = {a for accs in needed.values() for a in accs}
    owned = {a.id for a in led.lookup_accounts(list(ids)) if _owns(principal, a)} if ids else set()
    for i, accs in needed.items():
        if not any(a in owned for a in accs):
            raise ProblemError(
                403,
                "not-account-owner",
                "Not your account",
                f"transfer {i} debits an account the caller does not own",
            )


@router.post(
    "/transfers",
    response_model=TransfersOut,
    summary="Create a batch of transfers (idempotent ids; one result per event, in order)",
    responses={413: {"description": "more than 8190 transfers"}},
)
async def create_transfers(body: TransfersIn, principal: WriterDep, request: Request) -> TransfersOut:
    if len(body.transfers) > BATCH_MAX:
        raise ProblemError(
            413, "batch-too-large", "Batch too large", f"at most {BATCH_MAX} transfers per batch"
        )
    if not body.transfers:
        return TransfersOut(results=[])
    led = _ledger(request)
    transfers = [t.to_transfer() for t in body.transfers]
    if not _is_admin(principal) and not _debits_own_citizen_account(led, principal, transfers):
        await run_in_threadpool(_check_ownership, led, principal, transfers)
    try:
        if len(transfers) == 1 and not int(transfers[0].flags) & TransferFlags.LINKED:
            result = await asyncio.wrap_future(led.submit_transfer(transfers[0]))
            return TransfersOut(results=[_result_out(result)])
        results = await run_in_threadpool(led.create_transfers, transfers)
    except LedgerValueError as exc:
        raise ProblemError(422, "invalid-transfer", "Invalid transfer", str(exc)) from exc
    return TransfersOut(results=[_result_out(r) for r in results])


# -- transparency log -----------------------------------------------------------------------

_NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"
_NOTE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {}}}}


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="The latest signed checkpoint (C2SP signed note) with the cosignatures collected for it",
    responses=_NOTE_RESPONSES,
)
def get_checkpoint(request: Request) -> PlainTextResponse:
    signed = _cosignatures(request).cosigned(_ledger(request).checkpoint())
    return PlainTextResponse(signed, media_type=_NOTE_MEDIA_TYPE)


@router.get(
    "/checkpoint/cosigned",
    response_class=PlainTextResponse,
    summary="The newest checkpoint cosigned by at least `min_cosignatures` configured witnesses",
    responses=_NOTE_RESPONSES,
)
def get_cosigned_checkpoint(
    request: Request,
    min_cosignatures: Annotated[int, Query(ge=1, le=MAX_WITNESSES)] = 1,
) -> PlainTextResponse:
    try:
        signed = _cosignatures(request).latest(min_cosignatures)
    except CosignatureError as exc:
        raise _cosignature_problem(exc) from exc
    if signed is None:
        raise ProblemError(
            404, "no-cosigned-checkpoint", "No cosigned checkpoint",
            f"no checkpoint has {min_cosignatures} witness cosignature(s) yet",
        )  # fmt: skip
    return PlainTextResponse(signed, media_type=_NOTE_MEDIA_TYPE)


@router.get(
    "/checkpoints/{tree_size}",
    response_class=PlainTextResponse,
    summary="The checkpoint the ledger signed at a tree size, with its collected cosignatures",
    responses=_NOTE_RESPONSES,
)
def get_checkpoint_of_size(
    request: Request, tree_size: Annotated[int, Path(ge=1, le=(1 << 62))]
) -> PlainTextResponse:
    signed = _cosignatures(request).checkpoint(tree_size)
    if signed is None:
        raise ProblemError(
            404, "not-found", "Not found", f"the ledger stored no checkpoint of size {tree_size}"
        )
    return PlainTextResponse(signed, media_type=_NOTE_MEDIA_TYPE)


def _cosignature_problem(exc: CosignatureError) -> ProblemError:
    status = {
        "unknown-witness": 403,
        "bad-cosignature": 403,
        "unknown-checkpoint": 404,
        "checkpoint-mismatch": 409,
    }.get(exc.reason, 422)
    return ProblemError(status, exc.reason, "Cosignature refused", str(exc))


@router.post(
    "/cosignatures",
    response_model=CosignatureOut,
    status_code=201,
    summary="A witness submits its cosignature (C2SP tlog-cosignature) of a checkpoint",
)
def submit_cosignature(body: CosignatureIn, request: Request, response: Response) -> CosignatureOut:
    try:
        stored = _cosignatures(request).add(body.checkpoint, body.cosignature)
    except CosignatureError as exc:
        raise _cosignature_problem(exc) from exc
    if not stored.created:
        response.status_code = 200
    return CosignatureOut(
        status="CREATED" if stored.created else "EXISTS",
        tree_size=stored.tree_size,
        witness_key=stored.witness_key,
        cosigned_at_s=stored.cosigned_at_s,
    )


@router.get("/log-key", response_model=LogKeyOut, summary="The log's origin and C2SP verifier key")
def get_log_key(request: Request) -> LogKeyOut:
    led = _ledger(request)
    return LogKeyOut(
        origin=led.origin,
        verifier_key=led.verifier_key,
        tree_size=led.tree_size,
        witness_keys=_cosignatures(request).witness_keys,
    )


@router.get(
    "/transfers/{transfer_id}/proof",
    response_model=TransferProofOut,
    summary="Inclusion proof of one of the caller's transfers (leaf index, leaf, audit path)",
)
def get_transfer_proof(
    transfer_id: IdPath,
    principal: ReaderDep,
    request: Request,
    tree_size: Annotated[
        int | None, Query(ge=1, le=(1 << 62), description="default: the log's current size")
    ] = None,
) -> TransferProofOut:
    led = _ledger(request)
    tid = _int(transfer_id, "transfer id")
    found = led.lookup_transfers([tid])
    if not found or not (_is_admin(principal) or _sees_transfer(led, principal, found[0])):
        raise ProblemError(404, "not-found", "Not found", "no such transfer")  # no existence leak
    try:
        tp = transfer_inclusion_proof(led, tid, tree_size)
    except merkle.ProofError as exc:
        raise ProblemError(422, "invalid-proof-request", "No such proof", str(exc)) from exc
    if tp is None:  # pragma: no cover - transfers are never deleted
        raise ProblemError(404, "not-found", "Not found", "no such transfer")
    b64 = base64.b64encode
    return TransferProofOut(
        transfer=_transfer_out(tp.transfer),
        leaf_index=tp.leaf_index,
        tree_size=tp.tree_size,
        leaf=b64(tp.leaf).decode(),
        leaf_hash=b64(tp.leaf_hash).decode(),
        proof=[b64(h).decode() for h in tp.proof],
        checkpoint=_cosignatures(request).cosigned(tp.checkpoint) if tp.checkpoint else None,
    )


def _sees_transfer(led: Ledger, p: Principal, t: Transfer) -> bool:
    """A transfer is visible to the owner of its debit or credit account."""
    return any(_owns(p, a) for a in led.lookup_accounts([t.debit_account_id, t.credit_account_id]))


@router.get(
    "/proofs/inclusion", response_model=InclusionProofOut, summary="RFC 9162 inclusion proof of a leaf"
)
def get_inclusion_proof(
    request: Request,
    leaf_index: Annotated[int, Query(ge=0, le=(1 << 62))],
    tree_size: Annotated[int, Query(ge=1, le=(1 << 62))],
) -> InclusionProofOut:
    led = _ledger(request)
    try:
        proof = led.inclusion_proof(leaf_index, tree_size)
        leaf = led.leaf_hash(leaf_index)
    except merkle.ProofError as exc:
        raise ProblemError(422, "invalid-proof-request", "No such proof", str(exc)) from exc
    b64 = base64.b64encode
    return InclusionProofOut(
        leaf_index=leaf_index,
        tree_size=tree_size,
        leaf_hash=b64(leaf).decode(),
        proof=[b64(h).decode() for h in proof],
    )


@router.get("/proofs/consistency", response_model=ConsistencyProofOut, summary="RFC 9162 consistency proof")
def get_consistency_proof(
    request: Request,
    old_size: Annotated[int, Query(ge=1, le=(1 << 62))],
    new_size: Annotated[int, Query(ge=1, le=(1 << 62))],
) -> ConsistencyProofOut:
    try:
        proof = _ledger(request).consistency_proof(old_size, new_size)
    except merkle.ProofError as exc:
        raise ProblemError(422, "invalid-proof-request", "No such proof", str(exc)) from exc
    return ConsistencyProofOut(
        old_size=old_size, new_size=new_size, proof=[base64.b64encode(h).decode() for h in proof]
    )


# -- device allowances ----------------------------------------------------------------------


@router.post(
    "/allowances",
    response_model=AllowanceOut,
    status_code=201,
    summary="Delegate a capped allowance to a device key",
)
def create_allowance(body: AllowanceIn, principal: WriterDep, request: Request) -> AllowanceOut:
    led = _ledger(request)
    account = _visible_account(led, principal, _int(body.account_id, "account_id"))
    key = _b64u(body.device_public_key, "device_public_key")
    try:
        a = _allowances(request).grant(
            allowance_id=_int(body.id, "id"), account_id=account.id, device_public_key=key,
            cap_micros=_int(body.cap_micros, "cap_micros"), period_ns=body.period_s * 1_000_000_000,
            expires_at_ns=_int(body.expires_at_ns, "expires_at_ns"), ledger=account.ledger, code=body.code,
        )  # fmt: skip
    except AllowanceError as exc:
        raise _allowance_problem(exc) from exc
    return _allowance_out(a, 0)


def _own_allowance(request: Request, principal: Principal, allowance_id: int) -> Allowance:
    a = _allowances(request).get(allowance_id)
    if a is None:
        raise ProblemError(404, "not-found", "Not found", "no such allowance")
    _visible_account(_ledger(request), principal, a.account_id)
    return a


@router.get(
    "/allowances/{allowance_id}", response_model=AllowanceOut, summary="One of the caller's allowances"
)
def get_allowance(allowance_id: IdPath, principal: ReaderDep, request: Request) -> AllowanceOut:
    a = _own_allowance(request, principal, _int(allowance_id, "allowance id"))
    return _allowance_out(a, _allowances(request).spent(a.id))


@router.post("/allowances/{allowance_id}/revoke", status_code=204, summary="Revoke an allowance now")
def revoke_allowance(allowance_id: IdPath, principal: WriterDep, request: Request) -> Response:
    a = _own_allowance(request, principal, _int(allowance_id, "allowance id"))
    _allowances(request).revoke(a.id)
    return Response(status_code=204)


@router.post(
    "/allowances/payments",
    response_model=ResultOut,
    summary="A device pays from its allowance (signed request)",
)
def pay_from_allowance(body: PaymentIn, principal: DeviceDep, request: Request) -> ResultOut:
    req = PaymentRequest(
        allowance_id=_int(body.allowance_id, "allowance_id"), request_id=_int(body.request_id, "request_id"),
        amount_micros=_int(body.amount_micros, "amount_micros"), payee_account_id=_int(body.payee_account_id, "payee"),
        timestamp_ns=_int(body.timestamp_ns, "timestamp_ns"), flags=body.flags, timeout_s=body.timeout_s,
    )  # fmt: skip
    try:
        result = _allowances(request).pay(req, _b64u(body.signature, "signature"))
    except AllowanceError as exc:
        raise _allowance_problem(exc) from exc
    except LedgerValueError as exc:
        raise ProblemError(422, "invalid-transfer", "Invalid transfer", str(exc)) from exc
    return _result_out(result)


def _own_reservation(request: Request, principal: Principal, pending_id: int) -> None:
    found = _ledger(request).lookup_transfers([pending_id])
    if not found:
        raise ProblemError(404, "not-found", "Not found", "no such reservation")
    if not _is_admin(principal):
        _visible_account(_ledger(request), principal, found[0].credit_account_id)


@router.post(
    "/allowances/reservations/{pending_id}/post",
    response_model=ResultOut,
    summary="Payee posts (part of) a reservation",
)
def post_reservation(
    pending_id: IdPath, body: ResolveIn, principal: WriterDep, request: Request
) -> ResultOut:
    pid = _int(pending_id, "pending id")
    _own_reservation(request, principal, pid)
    amount = AMOUNT_MAX if body.amount_micros is None else _int(body.amount_micros, "amount_micros")
    try:
        return _result_out(_allowances(request).post(pid, _int(body.transfer_id, "transfer_id"), amount))
    except AllowanceError as exc:
        raise _allowance_problem(exc) from exc


@router.post(
    "/allowances/reservations/{pending_id}/void",
    response_model=ResultOut,
    summary="Payee voids a reservation",
)
def void_reservation(
    pending_id: IdPath, body: ResolveIn, principal: WriterDep, request: Request
) -> ResultOut:
    pid = _int(pending_id, "pending id")
    _own_reservation(request, principal, pid)
    try:
        return _result_out(_allowances(request).void(pid, _int(body.transfer_id, "transfer_id")))
    except AllowanceError as exc:
        raise _allowance_problem(exc) from exc


__all__ = ["log_origin", "router", "setup"]
