"""`civitas wallet …`: a citizen's wallet on the command line (library: identity.wallet).

    civitas wallet init                      create an encrypted wallet file
    civitas wallet receive OFFER [--tx-code] receive a credential (OpenID4VCI pre-authorized code)
    civitas wallet list                      credentials held and unused copies
    civitas wallet present REQUEST_URI [-y]  show what would be disclosed, then present (OpenID4VP)
    civitas wallet login --url URL           sign in with a per-service pseudonym (BBS credential)
    civitas wallet trust add PEM_FILE        trust a CA for X.509 verifiers (x509_san_dns, x509_hash)
    civitas wallet trust list [--json]       the trusted CA certificates
    civitas wallet trust remove SHA256       stop trusting one (by its SHA-256 fingerprint)

The passphrase comes from CIVITAS_WALLET_PASSPHRASE or an interactive prompt; the wallet file
from --wallet (default: ~/.civitas-wallet.json).
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from identity.wallet import Wallet, WalletError

console = Console(emoji=False, highlight=False)
err_console = Console(stderr=True, emoji=False, highlight=False)
DEFAULT_WALLET = Path.home() / ".civitas-wallet.json"
PASSPHRASE_ENV = "CIVITAS_WALLET_PASSPHRASE"


def _passphrase(confirm: bool = False) -> str:
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    first = getpass.getpass("wallet passphrase: ")
    if confirm and getpass.getpass("repeat passphrase: ") != first:
        raise WalletError("passphrases differ")
    return first


def _http(args: argparse.Namespace) -> httpx.Client:
    return httpx.Client(timeout=args.timeout, verify=not args.insecure_tls)


def _open(args: argparse.Namespace) -> Wallet:
    return Wallet.open(args.wallet, _passphrase(), http=_http(args))


def _offer_from(text: str) -> dict[str, Any]:
    """An offer as JSON, a file holding it, or an openid-credential-offer:// link."""
    if text.startswith("openid-credential-offer://"):
        query = urllib.parse.urlparse(text).query
        values = urllib.parse.parse_qs(query).get("credential_offer")
        if not values:
            raise WalletError("the link carries no credential_offer")
        text = values[0]
    elif not text.lstrip().startswith("{") and Path(text).exists():
        text = Path(text).read_text()
    offer = json.loads(text)
    if not isinstance(offer, dict):
        raise WalletError("a credential offer is a JSON object")
    return offer


def cmd_init(args: argparse.Namespace) -> int:
    Wallet.create(args.wallet, _passphrase(confirm=True), kdf_profile=args.kdf)
    console.print(f"wallet created at {args.wallet}")
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    wallet = _open(args)
    stored = wallet.receive(_offer_from(args.offer), tx_code=args.tx_code, batch_size=args.copies)
    console.print(f"received {stored.vct} from {stored.issuer}: {len(stored.copies)} single-use copies")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    wallet = Wallet.open(args.wallet, _passphrase())
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": c.id,
                        "vct": c.vct,
                        "issuer": c.issuer,
                        "unused_copies": c.unused,
                        "claims": c.claims,
                    }
                    for c in wallet.credentials()
                ]
            )
        )
        return 0
    table = Table("id", "type", "issuer", "unused copies", "claims")
    for c in wallet.credentials():
        names = ", ".join(k for k in c.claims if k not in ("vct", "iss", "iat", "exp"))
        table.add_row(c.id[:12], c.vct, c.issuer or "", str(c.unused), names)
    console.print(table)
    return 0


def cmd_present(args: argparse.Namespace) -> int:
    wallet = _open(args)
    # Only a Request Object signed by the verifier's did:key, or by an X.509 certificate chaining
    # to one of the wallet's trust anchors, is accepted (see specs/wallet.md);
    # fetched by POST with a wallet_nonce when the link offers request_uri_method=post.
    request = wallet.fetch_link(args.request)
    items = wallet.preview(request)
    if not items:
        err_console.print("no credential in this wallet satisfies the request")
        return 1
    console.print(f"[bold]{request['client_id']}[/bold] (signature verified) asks for:")
    for item in items:
        console.print(f"  from {item.vct} ({item.unused_copies} unused copies):")
        for name, value in item.disclosed.items():
            console.print(f"    {name} = {json.dumps(value)}")
    if not args.yes:
        answer = input("present these claims? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            console.print("nothing was sent")
            return 1
    wallet.respond(request)
    console.print("presented")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    wallet = _open(args)
    token = wallet.sign_in(args.url, service=args.service, scope=args.scope)
    if args.json:
        print(json.dumps(token))
    else:
        console.print(f"signed in to {args.service} (scope {token.get('scope')}); access token:")
        print(token["access_token"])
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wallet = subparsers.add_parser(
        "wallet", help="citizen wallet", description="A citizen's credential wallet."
    )
    wallet.add_argument("--wallet", type=Path, default=DEFAULT_WALLET, help="wallet file")
    wallet.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")
    wallet.add_argument(
        "--insecure-tls", action="store_true", help="skip TLS certificate checks (testing only)"
    )
    wsub = wallet.add_subparsers(dest="wallet_command", required=True, metavar="ACTION")

    p = wsub.add_parser(
        "init", help="create an encrypted wallet", description="Create an encrypted wallet file."
    )
    p.add_argument("--kdf", choices=("moderate", "interactive"), default="interactive")
    p.set_defaults(func=_guard(cmd_init))

    p = wsub.add_parser(
        "receive", help="receive a credential offer", description="Receive a credential (OID4VCI)."
    )
    p.add_argument("offer", help="offer JSON, a file with it, or an openid-credential-offer:// link")
    p.add_argument("--tx-code", help="the one-time code the issuer gave you")
    p.add_argument("--copies", type=int, default=5, help="single-use copies to request")
    p.set_defaults(func=_guard(cmd_receive))

    p = wsub.add_parser("list", help="list credentials", description="List held credentials.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard(cmd_list))

    p = wsub.add_parser("present", help="answer a presentation request", description="Present (OpenID4VP).")
    p.add_argument("request", help="request_uri or an openid4vp:// link")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_guard(cmd_present))

    p = wsub.add_parser(
        "login",
        help="sign in with a pseudonym (BBS credential)",
        description="Sign in to a Civitas service: present the BBS credential, get a pseudonymous token.",
    )
    p.add_argument("--url", required=True, help="the service's base URL")
    p.add_argument("--service", default="civitas", help="pseudonym context (one pseudonym per service)")
    p.add_argument("--scope", help="requested scopes (default: consent ledger:read ledger:write)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard(cmd_login))

    p = wsub.add_parser(
        "trust",
        help="CA certificates trusted for X.509 verifiers",
        description="Trust anchors: the CA certificates a verifier's x5c chain (client_id x509_san_dns:… "
        "or x509_hash:…) must lead to. did:key verifiers need none.",
    )
    tsub = p.add_subparsers(dest="trust_command", required=True, metavar="ACTION")
    t = tsub.add_parser(
        "add", help="trust the CA certificates in a PEM file", description="Add trust anchors."
    )
    t.add_argument("pem_file", help="PEM file with one or more CA certificates")
    t.set_defaults(func=_guard(cmd_trust_add))
    t = tsub.add_parser("list", help="list trusted CA certificates", description="List trust anchors.")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=_guard(cmd_trust_list))
    t = tsub.add_parser("remove", help="stop trusting a CA certificate", description="Remove a trust anchor.")
    t.add_argument("sha256", help="its SHA-256 fingerprint as `trust list` shows it (':' separators allowed)")
    t.set_defaults(func=_guard(cmd_trust_remove))


def cmd_trust_add(args: argparse.Namespace) -> int:
    try:
        pem = Path(args.pem_file).read_bytes()
    except OSError as exc:
        raise WalletError(f"cannot read {args.pem_file}: {exc.strerror}") from exc
    wallet = Wallet.open(args.wallet, _passphrase())
    added = wallet.add_trust_anchors(pem)
    for anchor in added:
        console.print(f"trusted {anchor.subject} (SHA-256 {anchor.fingerprint})")
    if not added:
        console.print("already trusted; nothing changed")
    return 0


def cmd_trust_list(args: argparse.Namespace) -> int:
    anchors = Wallet.open(args.wallet, _passphrase()).trust_anchors()
    if args.json:
        print(
            json.dumps(
                [
                    {"subject": a.subject, "sha256": a.fingerprint, "not_after": a.not_after, "pem": a.pem}
                    for a in anchors
                ]
            )
        )
        return 0
    # plain lines, never truncated: the fingerprint is what `trust remove` takes
    for a in anchors:
        until = datetime.datetime.fromtimestamp(a.not_after, datetime.UTC).strftime("%Y-%m-%d")
        print(f"{a.fingerprint}  valid until {until}  {a.subject}")
    if not anchors:
        print("no trust anchors: X.509 verifiers (x509_san_dns, x509_hash) are refused")
    return 0


def cmd_trust_remove(args: argparse.Namespace) -> int:
    removed = Wallet.open(args.wallet, _passphrase()).remove_trust_anchor(args.sha256)
    console.print(f"no longer trusted: {removed.subject}")
    return 0


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except (WalletError, ValueError, httpx.HTTPError) as exc:
            err_console.print(f"error: {exc}")
            return 2

    return run
