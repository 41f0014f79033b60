"""Ledger storage for throughput: balances in a narrow table of their own (ledger_balances);
transfers as blocks of their canonical encodings (ledger_transfer_blocks) with ledger_transfers
reduced to the id -> timestamp index; account history as per-batch rows chained per account
(ledger_account_history) instead of two per-account indexes. Existing data is carried over.

Revision ID: ledger_0003
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from identity.sql import Id128
from ledger.codec import TRANSFER_SIZE, decode_transfer, encode_transfer

revision = "ledger_0003"
down_revision = "ledger_0002"
branch_labels = None
depends_on = None

_RowIndex = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BLOCK = 16  # ledger.tables.TRANSFER_BLOCK when this revision was written
_SPAN = 8189  # largest timestamp offset inside one history row (a batch holds at most 8190 events)
_CHUNK = 2000
_U64 = 1 << 64
_TRANSFER_COLS = (
    "id, debit_account_id, credit_account_id, amount, pending_id, user_data_128, user_data_64, "
    "user_data_32, timeout, ledger, code, flags, timestamp"
)


class _Ids:
    def __init__(self, conn: sa.Connection) -> None:
        self.pg = conn.dialect.name == "postgresql"
        self.ph = "%s" if self.pg else "?"

    def to_db(self, v: int) -> Any:
        return uuid.UUID(int=v) if self.pg else v.to_bytes(16, "big")

    @staticmethod
    def from_db(v: Any) -> int:
        return v.int if isinstance(v, uuid.UUID) else int.from_bytes(v, "big")


def _rows(conn: sa.Connection, sql: str) -> Iterator[Sequence[Any]]:
    res = conn.exec_driver_sql(sql)
    while batch := res.fetchmany(_CHUNK):
        yield from batch


def _insert(conn: sa.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        conn.exec_driver_sql(sql, rows)
        rows.clear()


def _rename_table(conn: sa.Connection, old: str, new: str) -> None:
    """Rename a table; on PostgreSQL its primary key index too, so the name is free again."""
    op.rename_table(old, new)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ALTER INDEX {old}_pkey RENAME TO {new}_pkey")


def _bump_commit_seq(conn: sa.Connection) -> None:
    """Storage was rewritten: a running ledger's cached account state must not be trusted."""
    conn.exec_driver_sql("UPDATE ledger_meta SET commit_seq = commit_seq + 1")


def upgrade() -> None:
    conn = op.get_bind()
    d = _Ids(conn)
    ph = d.ph
    op.create_table(
        "ledger_balances",
        sa.Column("timestamp", _RowIndex, primary_key=True, autoincrement=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("history_head", sa.BigInteger(), nullable=False),
    )
    _rename_table(conn, "ledger_transfers", "ledger_transfers_0001")
    op.create_table(
        "ledger_transfers",
        sa.Column("id", Id128(), primary_key=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ledger_transfer_blocks",
        sa.Column("first_timestamp", _RowIndex, primary_key=True, autoincrement=False),
        sa.Column("first_leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("transfers", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ledger_account_history",
        sa.Column("seq", _RowIndex, primary_key=True, autoincrement=False),
        sa.Column("account_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("batch_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("previous_seq", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.LargeBinary(), nullable=False),
    )
    conn.exec_driver_sql(
        "INSERT INTO ledger_balances (timestamp, debits_pending, debits_posted, credits_pending, "
        "credits_posted, flags, history_head) SELECT timestamp, debits_pending, debits_posted, "
        "credits_pending, credits_posted, flags, 0 FROM ledger_accounts"
    )
    account_ts = {
        d.from_db(r[0]): int(r[1]) for r in _rows(conn, "SELECT id, timestamp FROM ledger_accounts")
    }

    heads: dict[int, int] = {}  # account timestamp -> the seq of its latest history row
    seq = 0
    ids: list[tuple[Any, ...]] = []
    blocks: list[tuple[Any, ...]] = []
    history: list[tuple[Any, ...]] = []
    block: list[bytes] = []
    block_ts = 0
    group_ts = 0
    group: dict[int, list[int]] = {}

    leaf_index = 0

    def flush_block() -> None:
        if block:
            blocks.append((block_ts, leaf_index - len(block), b"".join(block)))
            block.clear()

    def flush_group() -> None:
        nonlocal seq
        for acc, offsets in group.items():
            seq += 1
            entries = b"".join(v.to_bytes(2, "little") for v in offsets)
            history.append((seq, acc, group_ts, heads.get(acc, 0), entries))
            heads[acc] = seq
        group.clear()

    def write_rows() -> None:
        """Insert the id rows, blocks and history rows gathered so far (the lists are emptied)."""
        _insert(conn, f"INSERT INTO ledger_transfers (id, timestamp) VALUES ({ph}, {ph})", ids)
        _insert(
            conn,
            f"INSERT INTO ledger_transfer_blocks (first_timestamp, first_leaf_index, transfers) VALUES ({ph}, {ph}, {ph})",
            blocks,
        )
        _insert(
            conn,
            f"INSERT INTO ledger_account_history (seq, account_timestamp, batch_timestamp, previous_seq, "
            f"entries) VALUES ({ph}, {ph}, {ph}, {ph}, {ph})",
            history,
        )

    for raw in _rows(conn, f"SELECT {_TRANSFER_COLS} FROM ledger_transfers_0001 ORDER BY timestamp"):
        i = d.from_db
        row = (i(raw[0]), i(raw[1]), i(raw[2]), int(raw[3]), i(raw[4]), i(raw[5]), int(raw[6]) % _U64,
               int(raw[7]), int(raw[8]), int(raw[9]), int(raw[10]), int(raw[11]), int(raw[12]))  # fmt: skip
        ts = row[12]
        if not group or ts - group_ts > _SPAN:
            flush_block()
            flush_group()
            group_ts = ts
        if len(block) == _BLOCK:
            flush_block()
        if not block:
            block_ts = ts
        block.append(encode_transfer(row))
        leaf_index += 1
        ids.append((d.to_db(row[0]), ts))
        group.setdefault(account_ts[row[1]], []).append((ts - group_ts) << 1)
        group.setdefault(account_ts[row[2]], []).append((ts - group_ts) << 1 | 1)
        if len(ids) >= _CHUNK:
            write_rows()
    flush_block()
    flush_group()
    write_rows()
    _insert(
        conn,
        f"UPDATE ledger_balances SET history_head = {ph} WHERE timestamp = {ph}",
        [(head, acc) for acc, head in heads.items()],
    )
    op.drop_table("ledger_transfers_0001")
    _bump_commit_seq(conn)
    with op.batch_alter_table("ledger_accounts") as batch:
        for name in ("debits_pending", "debits_posted", "credits_pending", "credits_posted", "flags"):
            batch.drop_column(name)


def downgrade() -> None:
    conn = op.get_bind()
    d = _Ids(conn)
    ph = d.ph
    with op.batch_alter_table("ledger_accounts") as batch:
        for name in ("debits_pending", "debits_posted", "credits_pending", "credits_posted"):
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("flags", sa.Integer(), nullable=False, server_default="0"))
    balances = list(
        _rows(
            conn,
            "SELECT debits_pending, debits_posted, credits_pending, credits_posted, flags, timestamp "
            "FROM ledger_balances",
        )
    )
    _insert(
        conn,
        f"UPDATE ledger_accounts SET debits_pending = {ph}, debits_posted = {ph}, credits_pending = {ph}, "
        f"credits_posted = {ph}, flags = {ph} WHERE timestamp = {ph}",
        [tuple(r) for r in balances],
    )
    with op.batch_alter_table("ledger_accounts") as batch:
        for name in ("debits_pending", "debits_posted", "credits_pending", "credits_posted", "flags"):
            batch.alter_column(name, server_default=None)
    _rename_table(conn, "ledger_transfers", "ledger_transfers_0003")
    op.create_table(
        "ledger_transfers",
        sa.Column("timestamp", _RowIndex, primary_key=True, autoincrement=False),
        sa.Column("id", Id128(), nullable=False),
        sa.Column("debit_account_id", Id128(), nullable=False),
        sa.Column("credit_account_id", Id128(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("pending_id", Id128(), nullable=False),
        sa.Column("user_data_128", Id128(), nullable=False),
        sa.Column("user_data_64", sa.BigInteger(), nullable=False),
        sa.Column("user_data_32", sa.BigInteger(), nullable=False),
        sa.Column("timeout", sa.BigInteger(), nullable=False),
        sa.Column("ledger", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
    )
    op.create_index("ux_ledger_transfers_id", "ledger_transfers", ["id"], unique=True)
    op.create_index("ix_ledger_transfers_debit", "ledger_transfers", ["debit_account_id", "timestamp"])
    op.create_index("ix_ledger_transfers_credit", "ledger_transfers", ["credit_account_id", "timestamp"])
    rows: list[tuple[Any, ...]] = []
    insert = f"INSERT INTO ledger_transfers ({_TRANSFER_COLS}) VALUES ({', '.join([ph] * 13)})"
    blocks = "SELECT first_timestamp, transfers FROM ledger_transfer_blocks ORDER BY first_timestamp"
    for _first, blob in _rows(conn, blocks):
        data = bytes(blob)
        for k in range(0, len(data), TRANSFER_SIZE):
            t = decode_transfer(data[k : k + TRANSFER_SIZE])
            u64 = t[6] - _U64 if t[6] >= 1 << 63 else t[6]
            rows.append((d.to_db(t[0]), d.to_db(t[1]), d.to_db(t[2]), t[3], d.to_db(t[4]), d.to_db(t[5]), u64,
                         *t[7:]))  # fmt: skip
        if len(rows) >= _CHUNK:
            _insert(conn, insert, rows)
    _insert(conn, insert, rows)
    _bump_commit_seq(conn)
    for name in (
        "ledger_account_history",
        "ledger_transfers_0003",
        "ledger_transfer_blocks",
        "ledger_balances",
    ):
        op.drop_table(name)
