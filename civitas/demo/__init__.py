"""`civitas demo`: one simulated city day driven through the real HTTP API.

The command creates a city on embedded SQLite in a fresh data dir, starts the service under
uvicorn on 127.0.0.1, and plays one seeded day: credentials issued over OpenID4VCI, ledger
accounts opened by presentation, consent given and withdrawn, sensor readings and rewards,
EV micro-tolls, senior-fare checks over OpenID4VP, witness cosigning and the DP dashboard.
See specs/demo.md. Module-level imports stay light: the CLI imports this for every command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from civitas.demo.runner import DemoOptions
    from civitas.demo.summary import Summary

__all__ = ["cmd_demo", "register", "run_demo"]


def run_demo(options: DemoOptions, **kwargs: Any) -> Summary:
    """Run the demo (see `civitas.demo.runner.run_demo`)."""
    from civitas.demo.runner import run_demo as _run

    return _run(options, **kwargs)


def cmd_demo(args: argparse.Namespace) -> int:
    from civitas.demo.runner import DemoError, DemoOptions

    port = args.port
    if port is None:
        port = 8000 if args.serve and _port_free(args.host, 8000) else 0
    options = DemoOptions(
        citizens=args.citizens,
        seed=args.seed,
        data_dir=args.data_dir,
        serve=args.serve,
        json=args.json,
        host=args.host,
        port=port,
        workers=args.workers,
        durable=args.durable,
    )
    try:
        summary = run_demo(options)
    except KeyboardInterrupt:
        return 130
    except DemoError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"error: {exc}")
        return 2
    return 0 if summary.ok else 1


def _port_free(host: str, port: int) -> bool:
    from civitas.demo.server import bind_socket

    try:
        bind_socket(host, port).close()
    except OSError:
        return False
    return True


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run one simulated city day through the real HTTP API",
        description="Create a city on embedded SQLite, start the service on 127.0.0.1 and drive one "
        "simulated day through its HTTP API: credentials, accounts, consent, readings, rewards, "
        "tolls, eligibility checks, witness cosigning and the DP dashboard. Same seed, same city.",
    )
    p.add_argument("--citizens", type=int, default=1_000, help="number of citizens (default 1000)")
    p.add_argument("--seed", type=int, default=42, help="seed of the simulated city (default 42)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the demo city lives (default: $CIVITAS_DATA_DIR/demo-<seed>); recreated each run",
    )
    p.add_argument("--serve", action="store_true", help="keep serving the API and dashboard afterwards")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--port", type=int, default=None, help="port (default: 8000 with --serve if free, else any free port)"
    )
    p.add_argument("--workers", type=int, default=8, help="concurrent client threads, 1 to 64 (default 8)")
    p.add_argument(
        "--durable",
        action="store_true",
        help="fsync every commit (SQLite synchronous=FULL, as `civitas serve`); slower",
    )
    p.set_defaults(func=cmd_demo)
