"""Run the demo: a fresh data dir, the real service under uvicorn, the phases, the summary."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from civitas.demo.city import City
from civitas.demo.clock import DayClock, simulated_day
from civitas.demo.server import DemoServer
from civitas.demo.summary import PhaseFigures, Summary

__all__ = ["DemoContext", "DemoError", "DemoOptions", "Phase", "default_data_dir", "run_demo"]

MARKER = ".civitas-demo"
T = TypeVar("T")
R = TypeVar("R")


class DemoError(RuntimeError):
    """The demo cannot run (bad options, a data dir it must not delete) or a phase failed."""


@dataclass(frozen=True)
class DemoOptions:
    citizens: int = 1_000
    seed: int = 42
    data_dir: Path | None = None
    serve: bool = False
    json: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    workers: int = 8  # concurrent client threads (citizens' wallets, devices)
    processes: int = 1  # service processes sharing the listening socket
    durable: bool = False  # SQLite synchronous=FULL instead of NORMAL


@dataclass(frozen=True)
class Phase:
    """One step of the simulated day.

    `requires` names the API operations it drives ("POST /ledger/accounts"); when the running
    service lacks one, the phase is skipped as "<area> API not available". `after` names phases
    whose results it needs; if one of them was skipped, so is this one.
    """

    name: str
    title: str
    area: str
    requires: tuple[str, ...]
    run: Callable[[DemoContext, PhaseFigures], None]
    after: tuple[str, ...] = ()


class _Tracker:
    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


@dataclass
class DemoContext:
    """What phases share: the city, the clock, the service, an HTTP client and their state."""

    options: DemoOptions
    city: City
    clock: DayClock
    server: DemoServer
    http: httpx.Client
    operations: frozenset[str]
    progress: Progress | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def has(self, *operations: str) -> bool:
        return all(op in self.operations for op in operations)

    @contextmanager
    def track(self, description: str, total: int) -> Iterator[_Tracker]:
        if self.progress is None:
            yield _Tracker(None, None)
            return
        task = self.progress.add_task(description, total=total)
        try:
            yield _Tracker(self.progress, task)
        finally:
            self.progress.update(task, completed=total)

    def map(
        self, description: str, items: Sequence[T], fn: Callable[[T], R], *, workers: int | None = None
    ) -> list[R]:
        """Apply `fn` to every item on a few client threads (as many citizens acting at once),
        advancing a progress bar; results in input order; the first exception propagates."""
        n = workers or self.options.workers
        with self.track(description, len(items)) as bar:
            if n <= 1 or len(items) <= 1:
                out = []
                for item in items:
                    out.append(fn(item))
                    bar.advance()
                return out

            def one(item: T) -> R:
                result = fn(item)
                bar.advance()
                return result

            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="civitas-demo") as pool:
                return list(pool.map(one, items))


def default_data_dir(seed: int) -> Path:
    from civitas.settings import Settings

    return Settings().data_dir / f"demo-{seed}"


def _owner_alive(marker: Path) -> int | None:
    """The pid of a still-running demo that wrote `marker`, if any."""
    import os

    for line in marker.read_text().splitlines():
        if line.startswith("pid "):
            try:
                pid = int(line[4:])
                if pid != os.getpid():
                    os.kill(pid, 0)
                    return pid
            except (ValueError, ProcessLookupError):
                return None
            except PermissionError:
                return pid
    return None


def prepare_data_dir(path: Path) -> None:
    """Recreate the demo's data dir; refuse to delete a directory the demo did not create, or one
    a demo that is still running (e.g. with --serve) uses."""
    import os

    marker = path / MARKER
    if path.exists():
        if not path.is_dir():
            raise DemoError(f"{path} exists and is not a directory")
        if any(path.iterdir()) and not marker.exists():
            raise DemoError(f"{path} is not empty and was not created by the demo; choose another --data-dir")
        if marker.exists() and (pid := _owner_alive(marker)) is not None:
            raise DemoError(
                f"a demo (pid {pid}) is still using {path}; stop it or choose another --seed or --data-dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True)
    marker.write_text(f"created by `civitas demo`; deleted and recreated by each run\npid {os.getpid()}\n")


def _operations(http: httpx.Client) -> frozenset[str]:
    """Every "METHOD /path" the running service documents in its OpenAPI document."""
    response = http.get("/openapi.json")
    response.raise_for_status()
    paths: dict[str, dict[str, Any]] = response.json().get("paths", {})
    return frozenset(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)


def _console(options: DemoOptions) -> Console:
    return Console(stderr=options.json, emoji=False, highlight=False)


def run_demo(
    options: DemoOptions,
    *,
    phases: Iterable[Phase] | None = None,
    console: Console | None = None,
) -> Summary:
    """Run the simulated day against a freshly started service and return its figures.

    With `options.serve` the service keeps running after the summary until interrupted.
    """
    from civitas.demo.phases import PHASES

    if not 1 <= options.citizens <= 100_000:
        raise DemoError("--citizens must be between 1 and 100,000")
    if not 1 <= options.workers <= 64:
        raise DemoError("--workers must be between 1 and 64")
    console = console or _console(options)
    started = time.monotonic()
    data_dir = (options.data_dir or default_data_dir(options.seed)).resolve()
    prepare_data_dir(data_dir)
    day = simulated_day()
    clock = DayClock.create(data_dir / "clock", day)
    city = City(options.seed, options.citizens)
    server = DemoServer(
        data_dir,
        clock.path,
        host=options.host,
        port=options.port,
        processes=options.processes,
        durable=options.durable,
    )
    keep_serving = False
    try:
        base_url = server.start()
        summary = Summary(options.seed, options.citizens, day.isoformat(), str(data_dir), base_url)
        progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        from civitas.demo.state import MetadataCache

        transport = MetadataCache(httpx.HTTPTransport(limits=httpx.Limits(max_connections=32)))
        with httpx.Client(base_url=base_url, timeout=120.0, transport=transport) as http:
            ctx = DemoContext(options, city, clock, server, http, _operations(http), progress)
            with progress:
                _run_phases(ctx, list(phases if phases is not None else PHASES), summary, console)
        summary.duration_s = time.monotonic() - started
        keep_serving = summary.serving = options.serve and summary.ok
    finally:
        if not keep_serving:
            server.stop()
            clock.close()
    if options.json:
        sys.stdout.write(summary.dumps() + "\n")
        sys.stdout.flush()
    else:
        summary.render(console)
    if options.serve and summary.ok:
        console.print(f"serving {base_url} (dashboard: {summary.dashboard_url}); Ctrl-C stops")
        try:
            server.wait()
        finally:
            server.stop()
            clock.close()
    return summary


def _run_phases(ctx: DemoContext, phases: list[Phase], summary: Summary, console: Console) -> None:
    done: set[str] = set()
    failed: str | None = None
    for phase in phases:
        figures = PhaseFigures(phase.name, phase.title)
        summary.phases.append(figures)
        missing_api = [op for op in phase.requires if op not in ctx.operations]
        missing_phase = [p for p in phase.after if p not in done]
        if failed is not None:
            figures.skipped = f"not run: {failed} failed"
            continue
        if missing_api:
            figures.skipped = f"{phase.area} API not available"
        elif missing_phase:
            figures.skipped = f"needs {', '.join(missing_phase)}"
        if figures.skipped is not None:
            console.print(f"[yellow]skipped[/] {phase.title}: {figures.skipped}")
            continue
        started = time.monotonic()
        try:
            phase.run(ctx, figures)
        except Exception as exc:
            figures.duration_s = time.monotonic() - started
            figures.failed = f"{type(exc).__name__}: {exc}"
            summary.ok = False
            summary.error = f"{phase.title}: {figures.failed}"
            failed = phase.name
            console.print(f"[red]failed[/] {phase.title}: {figures.failed}")
            console.print_exception(max_frames=8)
            continue
        figures.duration_s = time.monotonic() - started
        done.add(phase.name)
        if ctx.progress is None or ctx.progress.disable:
            console.print(f"{phase.title}: done in {figures.duration_s:.1f} s")
