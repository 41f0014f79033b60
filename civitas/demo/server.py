"""The demo's service: the real FastAPI app under a real uvicorn, in a background thread.

The listening socket is bound before the app is built (port 0 picks a free port unless one is
asked for), so the app's `public_url` is the address clients really use and no other process can
take the port in between. The app gets the demo's `DayClock`.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from civitas.settings import Settings
from identity.sql import Clock

__all__ = ["DemoServer", "bind_socket"]

STARTUP_TIMEOUT_S = 30.0
# argon2id cost for the OAuth2 client secrets the demo creates (one per device: about 1,300 for
# 1,000 citizens). The service's default cost (64 MiB, 3 passes: ~0.6 s per hash and per token
# request on two cores) would take over half an hour; the secrets are 256-bit random strings.
DEMO_SECRET_TIME_COST = 1
DEMO_SECRET_MEMORY_KIB = 1024


def use_demo_secret_hashing() -> None:
    """Hash the demo's client secrets with argon2id at a low cost (like the wallet's `test` KDF
    profile). Verification stays argon2id, reading the cost from each stored hash."""
    from argon2 import PasswordHasher

    import civitas.clients

    civitas.clients._hasher = PasswordHasher(
        time_cost=DEMO_SECRET_TIME_COST, memory_cost=DEMO_SECRET_MEMORY_KIB, parallelism=1
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
    sock.set_inheritable(True)
    return sock


class DemoServer:
    """Build the app on a fresh data dir and serve it with uvicorn in a daemon thread."""

    def __init__(self, data_dir: Path, clock: Clock, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind_socket(host, port)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self.settings = Settings(
            data_dir=data_dir,
            database_url=f"sqlite:///{(data_dir / 'civitas.db').resolve()}",
            public_url=self.base_url,
            log_level="warning",
        )
        from civitas.app import create_app

        use_demo_secret_hashing()
        self.app: Any = create_app(self.settings, clock=clock)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def engine(self) -> Any:
        return self.app.state.engine

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="civitas-demo-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the demo server stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start in time")
            time.sleep(0.01)
        return self.base_url

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self.sock.close()
        self.app.state.engine.dispose()
