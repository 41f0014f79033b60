"""Liveness and readiness probes."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from civitas.deps import EngineDep
from civitas.errors import ProblemError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers")
async def readyz(engine: EngineDep) -> dict[str, str]:
    def probe() -> None:
        with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            conn.execute(sa.text("SELECT 1"))

    try:
        await run_in_threadpool(probe)
    except sa.exc.SQLAlchemyError as exc:
        raise ProblemError(503, "not-ready", "Service not ready", "the database is unreachable") from exc
    return {"status": "ready"}
