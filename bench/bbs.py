"""BBS benchmark: sign / verify / proof_gen / proof_verify per backend, against ursa-bbs-signatures.

    python -m bench bbs            # 10 and 100 messages, a third disclosed
    python -m bench bbs --quick    # fewer repetitions (smoke run)

The peer is the Rust BBS+ implementation behind ``ursa-bbs-signatures`` (same curve, messages in
G1, public key in G2), measured in the same process. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

OPS = ("sign", "verify", "proof_gen", "proof_verify")
PEER_OPS = {"sign": "sign", "verify": "verify", "proof_gen": "create_proof", "proof_verify": "verify_proof"}


def _median_ms(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up (generator cache, key cache)
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def _messages(n: int) -> list[bytes]:
    return [f"claim-{i}=value-{i:04d}".encode() for i in range(n)]


def _disclosed(n: int) -> list[int]:
    return list(range(0, n, 3))[: max(1, n // 3)]


def bench_ours(backend: str, n: int, reps: int) -> dict[str, float]:
    from identity import bbs

    suite = bbs.suite_for("BLS12_381_SHA_256", backend)
    sk = suite.keygen(hashlib.sha256(b"bench key").digest())
    pk = suite.sk_to_pk(sk)
    header, ph = b"bench-header", b"bench-presentation-header"
    messages = _messages(n)
    indexes = _disclosed(n)
    disclosed = [messages[i] for i in indexes]
    sig = suite.sign(sk, pk, header, messages)
    proof = suite.proof_gen(pk, sig, header, ph, messages, indexes)
    if not (
        suite.verify(pk, sig, header, messages)
        and suite.proof_verify(pk, proof, header, ph, disclosed, indexes)
    ):
        raise RuntimeError("self-check failed")
    return {
        "sign": _median_ms(lambda: suite.sign(sk, pk, header, messages), reps),
        "verify": _median_ms(lambda: suite.verify(pk, sig, header, messages), reps),
        "proof_gen": _median_ms(lambda: suite.proof_gen(pk, sig, header, ph, messages, indexes), reps),
        "proof_verify": _median_ms(
            lambda: suite.proof_verify(pk, proof, header, ph, disclosed, indexes), reps
        ),
    }


def bench_peer(n: int, reps: int) -> dict[str, float] | None:
    try:
        from ursa_bbs_signatures import api
        from ursa_bbs_signatures.models.CreateProofRequest import CreateProofRequest
        from ursa_bbs_signatures.models.keys.BlsKeyPair import BlsKeyPair
        from ursa_bbs_signatures.models.ProofMessage import ProofMessage, ProofMessageType
        from ursa_bbs_signatures.models.SignRequest import SignRequest
        from ursa_bbs_signatures.models.VerifyProofRequest import VerifyProofRequest
        from ursa_bbs_signatures.models.VerifyRequest import VerifyRequest
    except ImportError:
        return None
    messages = [m.decode() for m in _messages(n)]
    indexes = set(_disclosed(n))
    key_pair = BlsKeyPair.generate_g2(hashlib.sha256(b"bench key").digest())
    bbs_key = key_pair.get_bbs_key(n)
    public_only = BlsKeyPair(key_pair.public_key)
    nonce = b"bench-presentation-header"
    sig = api.sign(SignRequest(key_pair, messages))
    proof_messages = [
        ProofMessage(
            m, ProofMessageType.Revealed if i in indexes else ProofMessageType.HiddenProofSpecificBlinding
        )
        for i, m in enumerate(messages)
    ]
    disclosed = [m for i, m in enumerate(messages) if i in indexes]
    proof = api.create_proof(CreateProofRequest(bbs_key, proof_messages, sig, nonce))
    if not api.verify_proof(VerifyProofRequest(bbs_key, proof, disclosed, nonce)):
        raise RuntimeError("peer self-check failed")
    return {
        "sign": _median_ms(lambda: api.sign(SignRequest(key_pair, messages)), reps),
        "verify": _median_ms(lambda: api.verify(VerifyRequest(public_only, sig, messages)), reps),
        "proof_gen": _median_ms(
            lambda: api.create_proof(CreateProofRequest(bbs_key, proof_messages, sig, nonce)), reps
        ),
        "proof_verify": _median_ms(
            lambda: api.verify_proof(VerifyProofRequest(bbs_key, proof, disclosed, nonce)), reps
        ),
    }


def _print_table(rows: list[tuple[str, int, str, float, float | None]]) -> None:
    header = ("implementation", "msgs", "operation", "median ms", "ours/peer")
    lines = [header] + [
        (impl, str(n), op, f"{ms:.3f}", "" if ratio is None else f"{ratio:.2f}")
        for impl, n, op, ms, ratio in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for k, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(line)
            )
        )
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench bbs", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repetitions, 10 messages only for py_ecc")
    parser.add_argument("--reps", type=int, default=0, help="repetitions for the native backend and the peer")
    args = parser.parse_args(argv)

    from identity.bbs import available_backends

    reps = args.reps or (5 if args.quick else 41)
    slow_reps = 1 if args.quick else 3
    sizes = (10, 100)
    results: dict[tuple[str, int], dict[str, float]] = {}
    backends = available_backends()
    for backend in backends:
        for n in sizes:
            if backend == "py_ecc" and args.quick and n > 10:
                continue
            results[(backend, n)] = bench_ours(backend, n, slow_reps if backend == "py_ecc" else reps)
    peer: dict[int, dict[str, float]] = {}
    for n in sizes:
        measured = bench_peer(n, reps)
        if measured is not None:
            peer[n] = measured

    rows: list[tuple[str, int, str, float, float | None]] = []
    for (backend, n), figures in results.items():
        for op in OPS:
            ratio = figures[op] / peer[n][op] if n in peer else None
            rows.append((f"civitas/{backend}", n, op, figures[op], ratio))
    for n, figures in peer.items():
        for op in OPS:
            rows.append((f"ursa-bbs-signatures ({PEER_OPS[op]})", n, op, figures[op], None))
    print("BBS BLS12-381-SHA-256, a third of the messages disclosed; median wall-clock ms")
    _print_table(rows)

    fast = "arkworks" if "arkworks" in backends else backends[0]
    headline: dict[str, Any] = {"area": "bbs", "backend": fast}
    ours10 = results[(fast, 10)]
    for op in OPS:
        headline[f"{op}_ms"] = round(ours10[op], 4)
    if 10 in peer:
        headline["peer_proof_verify_ms"] = round(peer[10]["proof_verify"], 4)
        headline["peer_ratio"] = round(ours10["proof_verify"] / peer[10]["proof_verify"], 4)
        headline["peer_ratio_sign"] = round(ours10["sign"] / peer[10]["sign"], 4)
    if (fast, 100) in results:
        headline["proof_verify_100_ms"] = round(results[(fast, 100)]["proof_verify"], 4)
    if ("py_ecc", 10) in results:
        headline["py_ecc_proof_verify_ms"] = round(results[("py_ecc", 10)]["proof_verify"], 2)
        headline["py_ecc_sign_ms"] = round(results[("py_ecc", 10)]["sign"], 2)
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
