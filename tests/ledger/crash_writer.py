"""Child process for the kill -9 test: writes batches forever, printing each acknowledged batch."""

from __future__ import annotations

import sys

from nacl.signing import SigningKey

from ledger import Account, CreateTransferStatus, Ledger, Transfer

BATCH = 400
ACCOUNTS = 50


def batch_for(k: int) -> list[Transfer]:
    batch = [
        Transfer(id=k * 10_000 + i, debit_account_id=1 + (k + i) % ACCOUNTS,
                 credit_account_id=1 + (k + 2 * i + 1) % ACCOUNTS, amount=1 + i, ledger=1, code=1)
        for i in range(BATCH)
    ]  # fmt: skip
    return [t for t in batch if t.debit_account_id != t.credit_account_id]


def main(path: str, key_hex: str) -> None:
    led = Ledger.open(
        f"sqlite:///{path}", signing_key=SigningKey(bytes.fromhex(key_hex)), origin="crash.test/ledger"
    )
    led.create_accounts([Account(id=i, ledger=1, code=1) for i in range(1, ACCOUNTS + 1)])
    k = 0
    while led.lookup_transfers([(k + 1) * 10_000]):  # continue after the batches already on disk
        k += 1
    while True:
        k += 1
        batch = batch_for(k)
        results = led.create_transfers(batch)
        if any(r.status is not CreateTransferStatus.CREATED for r in results):
            raise SystemExit("unexpected failure")
        print(f"ACK {k} {len(batch)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
