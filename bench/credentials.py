"""Credential benchmark: SD-JWT VC issue / verify against the `sd-jwt` reference, and BBS credentials.

    python -m bench credentials            # full run
    python -m bench credentials --quick    # smoke run

Every credential has 10 claims, all selectively disclosable, and a presentation discloses 3 of them
with key binding; no decoys on either side. The reference (`sd-jwt` 0.10.4 over jwcrypto) is
configured as its docs do: an issuer-key callback returning a parsed JWK, expected aud and nonce.
Its KB-JWT verifier accepts ES256 only, so the comparisons use the same key types on both sides:

* ES256 issuer / ES256 holder: the reference's default; this ratio is the headline
  (``verify_ratio_vs_reference``).
* EdDSA issuer / ES256 holder: our issuer's default key type, with a holder key both can verify.
* EdDSA / EdDSA, our service default, is reported too; the reference cannot verify it, so its ratio
  (``verify_ratio_default_keys_vs_reference``) compares different key types and is informational.

Each verification uses a presentation of its own (a fresh credential copy and holder key, verified
once, as single-use copies are), so nothing a verifier might remember about a previous token can
help; parsed issuer keys may be reused (one issuer, many presentations).

The same rounds time the two Ed25519 checks of EdDSA/EdDSA presentations alone
(``sdjwt_signature_checks_us``): a floor no verifier of those presentations goes below. Beside it,
the time 3x the reference's throughput allows per verification (``verify_budget_for_3x_us``).

Timings run the competitors round-robin in the same process; each figure is operations per second
of process CPU time (one core's worth; threads included), the median of the rounds. BBS presentation
verification is also measured as a server sees it: 8 concurrent verifiers in a process pinned to one
CPU, whose pairing checks the backend answers in batches; that one-core throughput (the median of
five such processes) is ``bbs_presentation_verify_per_s`` and a lone verifier's is
``bbs_presentation_verify_single_per_s``.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

CLAIMS = {f"claim_{i}": f"value-{i:04d}" for i in range(10)}
DISCLOSE = ("claim_0", "claim_4", "claim_8")
AUD, NONCE, VCT = (
    "https://verifier.example",
    "bench-nonce-0123456789",
    "https://city.example/credentials/bench",
)
WARMUP = 5


def _rounds(fns: Sequence[Callable[[int], object]], batch: int, rounds: int) -> list[float]:
    """Median operations per CPU-second of each function, run round-robin ``rounds`` times.

    Process CPU time (all threads) rather than wall time: the figure is per core and does not
    depend on what else the machine runs; a multi-threaded backend is charged for every thread.
    """
    for fn in fns:
        fn(min(batch, WARMUP))
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, samples, strict=True):
            start = time.process_time()
            fn(batch)
            out.append(batch / max(time.process_time() - start, 1e-9))
    return [statistics.median(s) for s in samples]


class _Pool:
    """Presentations handed out once each; running out is a bench bug, not a reason to reuse."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self._next = 0

    def take(self) -> Any:
        if self._next >= len(self._items):
            raise RuntimeError("presentation pool exhausted")
        item = self._items[self._next]
        self._next += 1
        return item


class Ours:
    def __init__(self, issuer_alg: str, holder_alg: str, count: int) -> None:
        from identity import jose, sdjwt

        self.sdjwt = sdjwt
        gen = {"EdDSA": jose.generate_ed25519, "ES256": jose.generate_ec_p256}
        self.issuer = gen[issuer_alg]()
        self.issuer_pub = jose.public_jwk(self.issuer)
        self.holders = [gen[holder_alg]() for _ in range(count)]
        self.claims = {
            "vct": VCT,
            "iss": "https://city.example",
            **{sdjwt.SD(k): v for k, v in CLAIMS.items()},
        }
        self.pool = _Pool([self._presentation(h) for h in self.holders])

    def _presentation(self, holder: dict[str, Any]) -> str:
        cred = self.sdjwt.issue(self.claims, issuer_key=self.issuer, holder_jwk=holder)
        return self.sdjwt.present(
            cred, disclose=[(k,) for k in DISCLOSE], holder_key=holder, audience=AUD, nonce=NONCE
        )

    def issue(self, n: int) -> None:
        for i in range(n):
            self.sdjwt.issue(
                self.claims, issuer_key=self.issuer, holder_jwk=self.holders[i % len(self.holders)]
            )

    def verify(self, n: int) -> None:
        for _ in range(n):
            claims = self.sdjwt.verify_presentation(
                self.pool.take(),
                issuer_jwk=self.issuer_pub,
                expected_audience=AUD,
                expected_nonce=NONCE,
            )
            if len(claims) < 3 + len(DISCLOSE):
                raise RuntimeError("verification returned too few claims")


class SignatureChecks:
    """Only the two Ed25519 checks of each of ``ours``' EdDSA/EdDSA presentations (issuer JWT,
    KB-JWT), made by :func:`identity.ed25519.verify` on their own signing inputs: the floor under
    what any verifier of these presentations must spend, whatever it does besides."""

    def __init__(self, ours: Ours) -> None:
        from identity import ed25519, jose

        self.verify_one = ed25519.verify
        issuer_x = jose.b64u_decode(ours.issuer_pub["x"])
        checks = []
        for presentation in ours.pool._items:
            jwt, kb = presentation.split("~")[0], presentation.rsplit("~", 1)[1]
            holder_x = jose.b64u_decode(ours.sdjwt.peek_issuer_jwt(presentation)[1]["cnf"]["jwk"]["x"])
            for token, key in ((jwt, issuer_x), (kb, holder_x)):
                signing_input, _, signature = token.rpartition(".")
                checks.append((jose.b64u_decode(signature), signing_input.encode("ascii"), key))
        self.pool = _Pool([checks[i : i + 2] for i in range(0, len(checks), 2)])

    def verify(self, n: int) -> None:
        for _ in range(n):
            for signature, message, key in self.pool.take():
                if not self.verify_one(signature, message, key):
                    raise RuntimeError("a benchmark signature did not verify")


class Reference:
    def __init__(self, issuer_alg: str, count: int) -> None:
        from jwcrypto.jwk import JWK
        from sd_jwt.common import SDObj
        from sd_jwt.holder import SDJWTHolder
        from sd_jwt.issuer import SDJWTIssuer
        from sd_jwt.verifier import SDJWTVerifier

        self.Issuer, self.Verifier = SDJWTIssuer, SDJWTVerifier
        self.issuer_alg = issuer_alg
        if issuer_alg == "EdDSA":
            self.issuer = JWK.generate(kty="OKP", crv="Ed25519")
        else:
            self.issuer = JWK.generate(kty="EC", crv="P-256")
        self.issuer_pub = JWK.from_json(self.issuer.export_public())
        self.holders = [JWK.generate(kty="EC", crv="P-256") for _ in range(count)]
        self.claims = {"vct": VCT, "iss": "https://city.example", **{SDObj(k): v for k, v in CLAIMS.items()}}
        presentations = []
        for holder in self.holders:
            h = SDJWTHolder(self._issue(holder))
            h.create_presentation(
                {k: True for k in DISCLOSE}, nonce=NONCE, aud=AUD, holder_key=holder, sign_alg="ES256"
            )
            presentations.append(h.sd_jwt_presentation)
        self.pool = _Pool(presentations)

    def _issue(self, holder: Any) -> str:
        issuer = self.Issuer(
            self.claims,
            self.issuer,
            holder_key=holder,
            sign_alg=self.issuer_alg,
            extra_header_parameters={"typ": "dc+sd-jwt"},
        )
        return str(issuer.sd_jwt_issuance)

    def issue(self, n: int) -> None:
        for i in range(n):
            self._issue(self.holders[i % len(self.holders)])

    def verify(self, n: int) -> None:
        for _ in range(n):
            verifier = self.Verifier(
                self.pool.take(),
                lambda iss, header: self.issuer_pub,
                expected_aud=AUD,
                expected_nonce=NONCE,
            )
            if len(verifier.get_verified_payload()) < 3 + len(DISCLOSE):
                raise RuntimeError("reference verification returned too few claims")


CONCURRENT_VERIFIERS = 8


def bbs_figures(batch: int, rounds: int, one_core_runs: int) -> dict[str, float] | None:
    """BBS credentials (10 claims, 3 disclosed): issue, presentation and presentation verify.

    The one-core figure is the median of ``one_core_runs`` fresh processes: a single run is at the
    mercy of the machine's load at that moment.
    """
    try:
        from identity import bbs_credentials
    except ImportError:
        return None
    bench = bbs_credentials.benchmark_fixture(CLAIMS, DISCLOSE, vct=VCT)
    issue, present, verify = _rounds([bench.issue, bench.present, bench.verify], batch, rounds)
    one_core = statistics.median(
        _on_one_core(CONCURRENT_VERIFIERS, batch * rounds) for _ in range(one_core_runs)
    )
    return {
        "issue_per_s": issue,
        "presentation_per_s": present,
        "verify_per_s": verify,
        "one_core_verify_per_s": one_core,
    }


def _on_one_core(threads: int, total: int) -> float:
    """Presentation verifications per second of ``threads`` concurrent verifiers (as a server's
    request threads are) in a fresh process pinned to one CPU: its wall time is one core's time."""
    script = (
        "import json, sys; from bench import credentials; "
        "print(json.dumps(credentials._verify_on_this_core(int(sys.argv[1]), int(sys.argv[2]))))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", script, str(threads), str(total)],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def _verify_on_this_core(threads: int, total: int) -> float:
    import threading

    from identity import bbs_credentials

    if hasattr(os, "sched_setaffinity"):  # before any thread exists, so every thread inherits it
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bench = bbs_credentials.benchmark_fixture(CLAIMS, DISCLOSE, vct=VCT)
    bench.verify(min(total, WARMUP))
    per_thread = max(1, total // threads)
    workers = [threading.Thread(target=bench.verify, args=(per_thread,)) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return per_thread * threads / (time.perf_counter() - start)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench credentials")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    batch, rounds = (20, 3) if args.quick else (200, 7)
    count = min(batch, WARMUP) + batch * rounds  # one presentation per verification

    default_keys = Ours("EdDSA", "EdDSA", count)
    rows = [  # (label, competitor); the reference rows are the baselines of the same-key rows
        ("civitas EdDSA/EdDSA (default)", default_keys),
        ("civitas EdDSA/ES256", Ours("EdDSA", "ES256", count)),
        ("sd-jwt 0.10.4 EdDSA/ES256", Reference("EdDSA", count)),
        ("civitas ES256/ES256", Ours("ES256", "ES256", count)),
        ("sd-jwt 0.10.4 ES256/ES256 (ref)", Reference("ES256", count)),
    ]
    floor = SignatureChecks(default_keys)  # the very presentations that row verifies
    issue = _rounds([c.issue for _, c in rows], batch, rounds)
    *verify, checks = _rounds([*(c.verify for _, c in rows), floor.verify], batch, rounds)
    ed_default, ed_es, ref_ed_es, es_es, ref_es_es = verify
    baseline = [ref_es_es, ref_ed_es, ref_ed_es, ref_es_es, ref_es_es]

    print("SD-JWT VC, 10 claims (all selectively disclosable), 3 disclosed, key binding")
    print("keys: issuer/holder; each presentation is verified once; CPU time")
    print(f"{'implementation':34} {'issue/s':>10} {'verify/s':>10} {'verify vs sd-jwt':>17}")
    for (name, _), iss, ver, base in zip(rows, issue, verify, baseline, strict=True):
        note = "  (different keys)" if name.startswith("civitas EdDSA/EdDSA") else ""
        print(f"{name:34} {iss:10.0f} {ver:10.0f} {ver / base:16.2f}x{note}")
    # the floor: what the two Ed25519 checks alone cost, and what 3x the reference would allow
    verify_us, checks_us, budget_us = 1e6 / ed_default, 1e6 / checks, 1e6 / (3 * ref_es_es)
    print(
        f"EdDSA/EdDSA: {verify_us:.0f} µs a verification, of which the two Ed25519 checks alone "
        f"{checks_us:.0f} µs; 3x the reference allows {budget_us:.0f} µs, leaving "
        f"{budget_us - checks_us:.0f} µs for both JWS decodings and all SD-JWT work"
    )

    headline: dict[str, Any] = {
        "area": "credentials",
        "sdjwt_issue_per_s": round(issue[0]),
        "sdjwt_verify_per_s": round(ed_default),
        "sdjwt_eddsa_es256_verify_per_s": round(ed_es),
        "sdjwt_es256_verify_per_s": round(es_es),
        "reference_issue_per_s": round(issue[4]),
        "reference_verify_per_s": round(ref_es_es),
        "reference_eddsa_es256_verify_per_s": round(ref_ed_es),
        "verify_ratio_vs_reference": round(es_es / ref_es_es, 2),
        "verify_ratio_eddsa_es256_vs_reference": round(ed_es / ref_ed_es, 2),
        "verify_ratio_default_keys_vs_reference": round(ed_default / ref_es_es, 2),
        "sdjwt_verify_us": round(verify_us, 1),
        "sdjwt_signature_checks_us": round(checks_us, 1),
        "verify_budget_for_3x_us": round(budget_us, 1),
    }
    bbs = bbs_figures(max(5, batch // 5), rounds, 1 if args.quick else 5)
    if bbs is None:
        print("BBS credentials: not available")
        headline["bbs_presentation_verify_per_s"] = None
    else:
        print(
            f"BBS credentials (10 claims, 3 disclosed): issue {bbs['issue_per_s']:.0f}/s, "
            f"present {bbs['presentation_per_s']:.0f}/s, verify {bbs['verify_per_s']:.0f}/s"
        )
        headline["bbs_issue_per_s"] = round(bbs["issue_per_s"])
        headline["bbs_presentation_per_s"] = round(bbs["presentation_per_s"])
        print(
            f"BBS presentation verify on one core with {CONCURRENT_VERIFIERS} concurrent verifiers "
            f"(their pairing checks batched): {bbs['one_core_verify_per_s']:.0f}/s"
        )
        headline["bbs_presentation_verify_per_s"] = round(bbs["one_core_verify_per_s"])
        headline["bbs_presentation_verify_single_per_s"] = round(bbs["verify_per_s"])
    print(json.dumps(headline))
    return 0
