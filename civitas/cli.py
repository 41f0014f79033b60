"""`civitas` command line: serve, migrate, clients, keys, openapi, and each area's commands.

An area adds commands from a module listed in COMMAND_MODULES that defines
`register(subparsers)`; each command sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from civitas.settings import Settings

COMMAND_MODULES: tuple[str, ...] = ("civitas.cli_ledger", "civitas.cli_wallet", "civitas.demo")
DEFAULT_OPENAPI_PATH = Path("specs/openapi.json")

console = Console(emoji=False, highlight=False)
err_console = Console(stderr=True, emoji=False, highlight=False)


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from civitas.db import create_engine, migrate

    engine = create_engine(settings)
    migrate(engine)
    return engine


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    _engine(settings).dispose()  # migrate once, before any worker starts
    from civitas.keys import KeyStore

    KeyStore.open(
        settings.data_dir, settings.signing_key.get_secret_value() if settings.signing_key else None
    )
    console.print(f"Civitas on http://{args.host}:{args.port} (data in {settings.data_dir.resolve()})")
    uvicorn.run(
        "civitas.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
        proxy_headers=True,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from civitas.db import current_heads

    engine = _engine(Settings())
    console.print(f"schema at {', '.join(sorted(current_heads(engine)))}")
    engine.dispose()
    return 0


def cmd_clients_add(args: argparse.Namespace) -> int:
    from civitas.clients import ClientError, add_client

    engine = _engine(Settings())
    try:
        client, secret = add_client(engine, args.name, args.scopes)
    except ClientError as exc:
        err_console.print(f"error: {exc}")
        return 2
    if args.json:
        print(
            json.dumps(
                {"client_id": client.client_id, "client_secret": secret, "scopes": list(client.scopes)}
            )
        )
    else:
        console.print(f"client_id:     {client.client_id}")
        console.print(f"client_secret: {secret}")
        console.print("The secret is shown only now; only its hash is stored.", style="yellow")
    return 0


def cmd_clients_list(args: argparse.Namespace) -> int:
    from civitas.clients import list_clients

    clients = list_clients(_engine(Settings()))
    if args.json:
        rows = [
            {"client_id": c.client_id, "name": c.name, "scopes": list(c.scopes), "active": c.active}
            for c in clients
        ]
        print(json.dumps(rows))
        return 0
    table = Table("client_id", "name", "scopes", "status")
    for c in clients:
        table.add_row(c.client_id, c.name, " ".join(c.scopes), "active" if c.active else "revoked")
    console.print(table)
    return 0


def cmd_clients_revoke(args: argparse.Namespace) -> int:
    from civitas.clients import ClientError, revoke_client

    try:
        revoke_client(_engine(Settings()), args.client_id)
    except ClientError as exc:
        err_console.print(f"error: {exc}")
        return 2
    console.print(f"revoked {args.client_id}")
    return 0


def _keystore(settings: Settings):  # type: ignore[no-untyped-def]
    from civitas.keys import KeyStore

    secret = settings.signing_key.get_secret_value() if settings.signing_key else None
    return KeyStore.open(settings.data_dir, secret)


def cmd_keys_show(args: argparse.Namespace) -> int:
    keys = _keystore(Settings())
    table = Table("name", "status", "kid")
    table.columns[2].overflow = "fold"
    for name in ("service", "log"):
        table.add_row(name, "current", keys.current(name).kid)
        for old in keys.retired(name):
            table.add_row(name, "retired", old.kid)
    console.print(table)
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from civitas.keys import KeyStoreError

    keys = _keystore(Settings())
    try:
        new = keys.rotate(args.name)
    except KeyStoreError as exc:
        err_console.print(f"error: {exc}")
        return 2
    console.print(f"{args.name} key rotated; current kid {new.kid}")
    return 0


def cmd_keys_verifier_csr(args: argparse.Namespace) -> int:
    from civitas.verifier_cert import VerifierCertificateError, certificate_request, key_path

    settings = Settings()
    dns = args.dns or urllib.parse.urlsplit(settings.issuer).hostname or ""
    try:
        csr, made = certificate_request(settings, dns, args.key_type)
    except VerifierCertificateError as exc:
        err_console.print(f"error: {exc}")
        return 2
    sys.stdout.write(csr.decode("ascii"))
    note = "made" if made else "kept"
    err_console.print(
        f"{note} the verifier key {key_path(settings)}; have a CA certify this request for {dns.lower()}, "
        "then set CIVITAS_VERIFIER_X509_CHAIN to the certificate chain (PEM, leaf first)",
        soft_wrap=True,  # the key's path stays whole
    )
    return 0


def cmd_keys_verifier_check(args: argparse.Namespace) -> int:
    from civitas.verifier_cert import VerifierCertificateError, check

    try:
        found = check(Settings(), now=int(time.time()))
    except VerifierCertificateError as exc:
        err_console.print(f"error: {exc}")
        return 2
    if found is None:
        err_console.print("error: CIVITAS_VERIFIER_X509_CHAIN is not set; the verifier signs as its did:key")
        return 2
    table = Table("check", "result")
    table.columns[1].overflow = "fold"
    table.add_row("client_id", found.signer.client_id)
    table.add_row("alg", found.signer.alg)
    table.add_row("certificates", str(len(found.signer.header["x5c"])))
    table.add_row("expires", found.expires.isoformat())
    for subject in found.not_revoked:
        table.add_row("revocation", f"{subject!r} is not revoked")
    for problem in found.unknown_status:
        table.add_row("revocation", problem)
    if not found.not_revoked and not found.unknown_status:
        table.add_row("revocation", "not checked: no certificate with its issuer in the chain names a CRL")
    console.print(table)
    return 1 if found.unknown_status else 0


def openapi_document() -> dict[str, object]:
    import tempfile

    from civitas.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/openapi.db"))
        doc = app.openapi()
        app.state.engine.dispose()
    return doc


def render_openapi() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def cmd_openapi(args: argparse.Namespace) -> int:
    text = render_openapi()
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    console.print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civitas",
        description="Civitas: privacy-preserving identity, consent and micropayments for a city. "
        "Settings come from CIVITAS_* environment variables (CIVITAS_DATA_DIR, CIVITAS_DATABASE_URL, ...).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the HTTP API (migrates first)", description="Run the HTTP API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="apply database migrations", description="Apply database migrations.")
    p.set_defaults(func=cmd_migrate)

    clients = sub.add_parser("clients", help="OAuth2 clients", description="Manage OAuth2 clients.")
    csub = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    p = csub.add_parser(
        "add", help="register a client; prints its secret once", description="Register a client."
    )
    p.add_argument("--name", required=True)
    p.add_argument("--scopes", required=True, help='space-separated, e.g. "ledger:read ledger:write"')
    p.add_argument("--json", action="store_true", help="print the credentials as JSON")
    p.set_defaults(func=cmd_clients_add)
    p = csub.add_parser("list", help="list clients", description="List registered clients.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_clients_list)
    p = csub.add_parser(
        "revoke", help="revoke a client", description="Revoke a client; its tokens stop working."
    )
    p.add_argument("client_id")
    p.set_defaults(func=cmd_clients_revoke)

    keys = sub.add_parser("keys", help="service signing keys", description="Show or rotate signing keys.")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = ksub.add_parser("show", help="show key ids (never private keys)", description="Show key ids.")
    p.set_defaults(func=cmd_keys_show)
    p = ksub.add_parser(
        "rotate", help="rotate a key; old public keys keep verifying", description="Rotate a key."
    )
    p.add_argument("--name", default="service", choices=("service", "log"))
    p.set_defaults(func=cmd_keys_rotate)
    p = ksub.add_parser(
        "verifier-csr",
        help="certificate signing request for the verifier's X.509 identity (OpenID4VP x509_san_dns)",
        description="Print a PEM certificate signing request for the OpenID4VP verifier; makes its key "
        "(0600) on first use.",
    )
    p.add_argument("--dns", default=None, help="the DNS name to certify (default: the public URL's host)")
    p.add_argument("--key-type", default="p256", choices=("p256", "ed25519"))
    p.set_defaults(func=cmd_keys_verifier_csr)
    p = ksub.add_parser(
        "verifier-check",
        help="check the verifier certificate chain as the service does when it starts",
        description="Check CIVITAS_VERIFIER_X509_CHAIN and its key as the service does when it starts "
        "(validity, key, names, CRLs). Exit 0: usable; 1: usable, but a revocation status is unknown; "
        "2: the service would not start.",
    )
    p.set_defaults(func=cmd_keys_verifier_check)

    p = sub.add_parser(
        "openapi", help="write the OpenAPI document", description="Write the OpenAPI document."
    )
    p.add_argument("--output", type=Path, default=DEFAULT_OPENAPI_PATH, help="path, or - for stdout")
    p.set_defaults(func=cmd_openapi)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
