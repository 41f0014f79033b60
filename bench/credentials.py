"""Credential benchmark: SD-JWT VC issue / verify against the `sd-jwt` reference, and BBS credentials.

    python -m bench credentials            # full run
    python -m bench credentials --quick    # smoke run

Every credential has 10 claims, all selectively disclosable, and a presentation discloses 3 of them
with key binding. Ours: EdDSA issuer and holder keys (the service default). Reference
(`sd-jwt` 0.10.4, jwcrypto): ES256 issuer and holder keys, its default and the only KB-JWT alg its
verifier accepts; for fairness we also report ours on ES256. Each verification uses a fresh
presentation of a fresh credential copy (single-use copies, as the wallet presents them), so no
cache can remember a signature; parsed issuer keys are cached (one issuer, many presentations).

Timings run the competitors round-robin in the same process; each figure is operations per second
of process CPU time (one core's worth; threads included), the median of the rounds. The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def _rounds(fns: Sequence[Callable[[int], object]], batch: int, rounds: int) -> list[float]:
    """Median operations per CPU-second of each function, run round-robin ``rounds`` times.

    Process CPU time (all threads) rather than wall time: the figure is per core and does not
    depend on what else the machine runs; a multi-threaded backend is charged for every thread.
    """
    for fn in fns:
        fn(min(batch, 5))  # warm-up
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, samples, strict=True):
            start = time.process_time()
            fn(batch)
            out.append(batch / max(time.process_time() - start, 1e-9))
    return [statistics.median(s) for s in samples]


class Ours:
    def __init__(self, alg: str, batch: int) -> None:
        from identity import jose, sdjwt

        self.sdjwt = sdjwt
        gen = jose.generate_ed25519 if alg == "EdDSA" else jose.generate_ec_p256
        self.issuer = gen()
        self.issuer_pub = jose.public_jwk(self.issuer)
        self.holders = [gen() for _ in range(batch)]
        self.claims = {
            "vct": VCT,
            "iss": "https://city.example",
            **{sdjwt.SD(k): v for k, v in CLAIMS.items()},
        }
        self.presentations = [self._presentation(h) for h in self.holders]

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
        for i in range(n):
            claims = self.sdjwt.verify_presentation(
                self.presentations[i % len(self.presentations)],
                issuer_jwk=self.issuer_pub,
                expected_audience=AUD,
                expected_nonce=NONCE,
            )
            if len(claims) < 3 + len(DISCLOSE):
                raise RuntimeError("verification returned too few claims")


class Reference:
    def __init__(self, batch: int) -> None:
        from jwcrypto.jwk import JWK
        from sd_jwt.common import SDObj
        from sd_jwt.holder import SDJWTHolder
        from sd_jwt.issuer import SDJWTIssuer
        from sd_jwt.verifier import SDJWTVerifier

        self.Issuer, self.Verifier = SDJWTIssuer, SDJWTVerifier
        self.issuer = JWK.generate(kty="EC", crv="P-256")
        self.issuer_pub = JWK.from_json(self.issuer.export_public())
        self.holders = [JWK.generate(kty="EC", crv="P-256") for _ in range(batch)]
        self.claims = {"vct": VCT, "iss": "https://city.example", **{SDObj(k): v for k, v in CLAIMS.items()}}
        self.presentations = []
        for holder in self.holders:
            issuance = self._issue(holder)
            h = SDJWTHolder(issuance)
            h.create_presentation(
                {k: True for k in DISCLOSE}, nonce=NONCE, aud=AUD, holder_key=holder, sign_alg="ES256"
            )
            self.presentations.append(h.sd_jwt_presentation)

    def _issue(self, holder: Any) -> str:
        issuer = self.Issuer(
            self.claims,
            self.issuer,
            holder_key=holder,
            sign_alg="ES256",
            extra_header_parameters={"typ": "dc+sd-jwt"},
        )
        return str(issuer.sd_jwt_issuance)

    def issue(self, n: int) -> None:
        for i in range(n):
            self._issue(self.holders[i % len(self.holders)])

    def verify(self, n: int) -> None:
        for i in range(n):
            verifier = self.Verifier(
                self.presentations[i % len(self.presentations)],
                lambda iss, header: self.issuer_pub,
                expected_aud=AUD,
                expected_nonce=NONCE,
            )
            if len(verifier.get_verified_payload()) < 3 + len(DISCLOSE):
                raise RuntimeError("reference verification returned too few claims")


def bbs_figures(batch: int, rounds: int) -> dict[str, float] | None:
    """BBS credentials (10 claims, 3 disclosed): issue, presentation and presentation verify."""
    try:
        from identity import bbs_credentials
    except ImportError:
        return None
    bench = bbs_credentials.benchmark_fixture(CLAIMS, DISCLOSE, vct=VCT)
    issue, present, verify = _rounds([bench.issue, bench.present, bench.verify], batch, rounds)
    return {"issue_per_s": issue, "presentation_per_s": present, "verify_per_s": verify}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench credentials")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    batch, rounds = (20, 3) if args.quick else (200, 7)

    ours_ed = Ours("EdDSA", batch)
    ours_es = Ours("ES256", batch)
    ref = Reference(batch)
    ed_issue, es_issue, ref_issue = _rounds([ours_ed.issue, ours_es.issue, ref.issue], batch, rounds)
    ed_verify, es_verify, ref_verify = _rounds([ours_ed.verify, ours_es.verify, ref.verify], batch, rounds)

    print("SD-JWT VC, 10 claims (all selectively disclosable), 3 disclosed, key binding")
    print(f"{'implementation':34} {'issue/s':>10} {'verify/s':>10} {'verify vs ref':>14}")
    for name, iss, ver in (
        ("civitas EdDSA/EdDSA", ed_issue, ed_verify),
        ("civitas ES256/ES256", es_issue, es_verify),
        ("sd-jwt 0.10.4 ES256/ES256 (ref)", ref_issue, ref_verify),
    ):
        print(f"{name:34} {iss:10.0f} {ver:10.0f} {ver / ref_verify:13.2f}x")

    headline: dict[str, Any] = {
        "area": "credentials",
        "sdjwt_issue_per_s": round(ed_issue),
        "sdjwt_verify_per_s": round(ed_verify),
        "sdjwt_es256_verify_per_s": round(es_verify),
        "reference_issue_per_s": round(ref_issue),
        "reference_verify_per_s": round(ref_verify),
        "verify_ratio_vs_reference": round(ed_verify / ref_verify, 2),
    }
    bbs = bbs_figures(max(5, batch // 10), rounds)
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
        headline["bbs_presentation_verify_per_s"] = round(bbs["verify_per_s"])
    print(json.dumps(headline))
    return 0
