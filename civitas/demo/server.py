"""The demo's service: the real FastAPI app under a real uvicorn, in its own process.

The demo binds the listening socket first (port 0 picks a free port unless one is asked for), so
the app's `public_url` is the address clients really use and no other process can take the port;
the service process inherits the socket. A separate process lets the service and the citizens'
wallets use both cores. The service migrates the fresh database and creates the keys as it starts;
it reads the simulated time from the demo's shared `DayClock` file.

Run as `python -m civitas.demo.server --data-dir D --public-url U --fd N --clock F` (the demo does).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from civitas.settings import Settings

__all__ = ["DemoServer", "bind_socket", "demo_settings"]

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# The city's own ledger accounts (the operator opens them over HTTP in the `ledger` phase).
TREASURY_ACCOUNT_ID = 1_000
INCENTIVE_ACCOUNT_ID = 1_001
TOLL_ACCOUNT_ID = 1_002
# Micro-rewards per accepted reading of each personal-data category (micro-units).
REWARD_RATES_MICROS = {
    "cvx:HouseholdEnergyUse": 500,
    "cvx:HomeAirQuality": 800,
    "pd:VehicleUsage": 300,
    "pd:Location": 200,
}


def demo_settings(data_dir: Path, public_url: str) -> Settings:
    """The service's settings in the demo: embedded SQLite in the demo's data dir."""
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{(data_dir / 'civitas.db').resolve()}",
        public_url=public_url,
        log_level="warning",
        reward_incentive_account_id=INCENTIVE_ACCOUNT_ID,
        reward_rates_micros=dict(REWARD_RATES_MICROS),
        # every simulated citizen's wallet calls from this one address: no per-client limit applies
        identity_rate_limit_per_min=10_000_000,
        identity_rate_limit_burst=10_000_000,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free port chosen by the OS)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


class DemoServer:
    """Run the service on a fresh data dir in a child process."""

    def __init__(
        self,
        data_dir: Path,
        clock_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        processes: int = 1,
        durable: bool = False,
    ) -> None:
        self.durable = durable
        if not 1 <= processes <= 8:
            raise ValueError("1 to 8 service processes")
        self.processes = processes
        self.sock = bind_socket(host, port)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self.clock_path = clock_path
        self.settings = demo_settings(data_dir, self.base_url)
        self.engine: Any = None
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self) -> str:
        """Start the service (the first process migrates the fresh database and creates the keys),
        wait until it answers, start the other processes on the same socket, then open the demo's
        own engine for the operator's library calls."""
        self._spawn()
        self._wait_ready()
        for _ in range(self.processes - 1):
            self._spawn()
        # Only the service processes hold the listening socket now: once they are gone, clients
        # get "connection refused" instead of waiting on a backlog nobody accepts from.
        self.sock.close()
        from identity.sql import open_engine

        self.engine = open_engine(self.settings.resolved_database_url)
        return self.base_url

    def _spawn(self) -> None:
        fd = self.sock.fileno()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "civitas.demo.server",
                "--data-dir",
                str(self.settings.data_dir),
                "--public-url",
                self.base_url,
                "--fd",
                str(fd),
                "--clock",
                str(self.clock_path),
                "--parent",
                str(os.getpid()),
                *(["--durable"] if self.durable else []),
            ],
            pass_fds=(fd,),
            stdout=2,  # anything the service prints goes to stderr: stdout may carry the JSON summary
        )
        self.children.append(child)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        first = self.children[0]
        with httpx.Client(base_url=self.base_url, timeout=2.0) as probe:
            while True:
                if first.poll() is not None:
                    raise RuntimeError(f"the demo service exited while starting (status {first.returncode})")
                try:
                    if probe.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the demo service did not start in time")
                time.sleep(0.05)

    def wait(self) -> None:
        """Block until the service stops or Ctrl-C (SIGINT) or SIGTERM asks it to."""
        import signal

        asked = threading.Event()
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, lambda *_: asked.set()) for sig in handled}
        try:
            while not asked.is_set() and any(c.poll() is None for c in self.children):
                asked.wait(0.2)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.sock.close()
        if self.engine is not None:
            self.engine.dispose()


def _watch_parent(parent: int, server: Any) -> None:
    """Stop serving when the demo process is gone (the service never outlives the demo)."""
    while not server.should_exit:
        if os.getppid() != parent:
            server.should_exit = True
            return
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from civitas.app import create_app
    from civitas.demo.clock import DayClock
    from identity.sql import open_engine

    parser = argparse.ArgumentParser(prog="python -m civitas.demo.server")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--public-url", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--clock", type=Path, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--durable", action="store_true", help="SQLite synchronous=FULL (default NORMAL)")
    args = parser.parse_args(argv)
    clock = DayClock.attach(args.clock)
    settings = demo_settings(args.data_dir, args.public_url)
    # WAL with synchronous=NORMAL: commits are atomic and consistent but the last ones may be lost
    # on power loss; the demo city is recreated on every run. `--durable` keeps FULL.
    engine = open_engine(settings.resolved_database_url, synchronous_full=args.durable)
    app = create_app(settings, engine=engine, clock=clock)
    sock = socket.socket(fileno=args.fd)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30)
    )
    threading.Thread(target=_watch_parent, args=(args.parent, server), daemon=True).start()
    server.run(sockets=[sock])
    app.state.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
