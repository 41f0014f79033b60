"""Group commit for single transfers: many threads or async tasks, one batch commit.

`GroupCommitter.submit(transfer)` returns a `concurrent.futures.Future`; a worker thread drains
the queue into batches of up to `max_batch` events (waiting at most `max_wait_s` for more once a
first request arrived) and commits each with `Ledger.create_transfers`. `submit_async` awaits the
result from asyncio. Linked events are refused here: a lone LINKED flag would chain a request to
an unrelated one from another client. A malformed transfer is refused at submit time so it cannot
fail the other requests of its batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, cast

from .engine import _check_transfer_ranges
from .types import BATCH_MAX, CreateTransferResult, LedgerError, LedgerValueError, Transfer, TransferFlags

if TYPE_CHECKING:
    from .store import Ledger

__all__ = ["GroupCommitter"]

_STOP = object()


class GroupCommitter:
    def __init__(self, ledger: Ledger, *, max_batch: int = BATCH_MAX, max_wait_s: float = 0.001) -> None:
        if not 0 < max_batch <= BATCH_MAX:
            raise LedgerValueError(f"max_batch must be in 1..{BATCH_MAX}")
        self.ledger = ledger
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self.batches = 0  # batches committed (for tests and metrics)
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._thread.start()

    def submit(self, transfer: Transfer) -> Future[CreateTransferResult]:
        if self._closed:
            raise LedgerError("group committer is closed")
        if int(transfer.flags) & TransferFlags.LINKED:
            raise LedgerValueError("linked transfers must be submitted together with create_transfers")
        _check_transfer_ranges(transfer)
        fut: Future[CreateTransferResult] = Future()
        self._queue.put((transfer, fut))
        return fut

    async def submit_async(self, transfer: Transfer) -> CreateTransferResult:
        return await asyncio.wrap_future(self.submit(transfer))

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            try:
                while len(batch) < self.max_batch:
                    nxt = (
                        self._queue.get(timeout=self.max_wait_s)
                        if self.max_wait_s
                        else self._queue.get_nowait()
                    )
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)
            except queue.Empty:
                pass
            self._commit(batch)

    def _commit(self, batch: list[object]) -> None:
        transfers: list[Transfer] = []
        futures: list[Future[CreateTransferResult]] = []
        for item in batch:
            t, f = cast("tuple[Transfer, Future[CreateTransferResult]]", item)
            if f.set_running_or_notify_cancel():
                transfers.append(t)
                futures.append(f)
        if not transfers:
            return
        try:
            results = self.ledger.create_transfers(transfers)
        except BaseException as exc:
            for f in futures:
                f.set_exception(exc)
            return
        self.batches += 1
        for f, r in zip(futures, results, strict=True):
            f.set_result(r)
