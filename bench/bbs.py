"""BBS benchmark: sign / verify / proof_gen / proof_verify per backend, against ursa-bbs-signatures.

    python -m bench bbs            # 10 and 100 messages, a third disclosed
    python -m bench bbs --quick    # smoke run: 10 messages, few repetitions

The peer is the Rust BBS+ implementation behind ``ursa-bbs-signatures`` (same curve, messages in
G1, public key in G2), measured in the same process. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

OPS = ("sign", "verify", "proof_gen", "proof_verify")
PEER_OPS = {"sign": "sign", "verify": "verify", "proof_gen": "create_proof", "proof_verify": "verify_proof"}


def _measure(fns: list[Callable[[], object]], reps: int) -> list[tuple[list[float], list[float]]]:
    """Run the callables round-robin (so they see the same machine load).

    For each callable: (wall-clock ms samples, process CPU ms samples; CPU includes worker threads).
    """
    for fn in fns:
        fn()  # warm-up (generator cache, key cache)
    samples: list[tuple[list[float], list[float]]] = [([], []) for _ in fns]
    for _ in range(reps):
        for fn, (wall, cpu) in zip(fns, samples, strict=True):
            cpu_start = time.process_time()
            start = time.perf_counter()
            fn()
            wall.append((time.perf_counter() - start) * 1000.0)
            cpu.append((time.process_time() - cpu_start) * 1000.0)
    return samples


def _messages(n: int) -> list[bytes]:
    return [f"claim-{i}=value-{i:04d}".encode() for i in range(n)]


def _disclosed(n: int) -> list[int]:
    return list(range(0, n, 3))[: max(1, n // 3)]


def ours(backend: str, n: int) -> dict[str, Callable[[], object]]:
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
        "sign": lambda: suite.sign(sk, pk, header, messages),
        "verify": lambda: suite.verify(pk, sig, header, messages),
        "proof_gen": lambda: suite.proof_gen(pk, sig, header, ph, messages, indexes),
        "proof_verify": lambda: suite.proof_verify(pk, proof, header, ph, disclosed, indexes),
    }


def peer(n: int) -> dict[str, Callable[[], object]] | None:
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
        "sign": lambda: api.sign(SignRequest(key_pair, messages)),
        "verify": lambda: api.verify(VerifyRequest(public_only, sig, messages)),
        "proof_gen": lambda: api.create_proof(CreateProofRequest(bbs_key, proof_messages, sig, nonce)),
        "proof_verify": lambda: api.verify_proof(VerifyProofRequest(bbs_key, proof, disclosed, nonce)),
    }


Row = tuple[str, int, str, float, float, float, float | None]


def _print_table(rows: list[Row]) -> None:
    header = ("implementation", "msgs", "operation", "median ms", "min ms", "cpu ms", "ours/peer")
    lines = [header] + [
        (impl, str(n), op, f"{med:.3f}", f"{low:.3f}", f"{cpu:.3f}", "" if ratio is None else f"{ratio:.2f}")
        for impl, n, op, med, low, cpu, ratio in rows
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
    parser.add_argument("--quick", action="store_true", help="smoke run: few repetitions, 10 messages only")
    parser.add_argument("--reps", type=int, default=0, help="repetitions for the native backend and the peer")
    args = parser.parse_args(argv)

    from identity.bbs import available_backends

    reps = args.reps or (5 if args.quick else 41)
    slow_reps = 1 if args.quick else 5
    sizes = (10,) if args.quick else (10, 100)
    backends = available_backends()
    fast = "arkworks" if "arkworks" in backends else backends[0]
    med: dict[tuple[str, int, str], float] = {}
    low: dict[tuple[str, int, str], float] = {}
    cpu: dict[tuple[str, int, str], float] = {}
    for n in sizes:
        ours_fns = ours(fast, n)
        peer_fns = peer(n)
        for op in OPS:
            fns = [ours_fns[op]] + ([peer_fns[op]] if peer_fns else [])
            for name, (wall, cpu_ms) in zip([fast, "peer"], _measure(fns, reps), strict=False):
                med[(name, n, op)] = statistics.median(wall)
                low[(name, n, op)] = min(wall)
                cpu[(name, n, op)] = statistics.median(cpu_ms)
    for backend in backends:
        if backend == fast:
            continue
        for n in sizes:
            fns_by_op = ours(backend, n)
            for op in OPS:
                ((wall, cpu_ms),) = _measure([fns_by_op[op]], slow_reps)
                med[(backend, n, op)] = statistics.median(wall)
                low[(backend, n, op)] = min(wall)
                cpu[(backend, n, op)] = statistics.median(cpu_ms)

    rows: list[Row] = []
    for name in [fast, *[b for b in backends if b != fast], "peer"]:
        for n in sizes:
            for op in OPS:
                key = (name, n, op)
                if key not in med:
                    continue
                peer_key = ("peer", n, op)
                ratio = med[key] / med[peer_key] if name != "peer" and peer_key in med else None
                label = f"ursa-bbs-signatures ({PEER_OPS[op]})" if name == "peer" else f"civitas/{name}"
                rows.append((label, n, op, med[key], low[key], cpu[key], ratio))
    print(
        "BBS BLS12-381-SHA-256, a third of the messages disclosed; wall-clock ms (ours and peer interleaved); "
        "cpu = process CPU time incl. worker threads"
    )
    _print_table(rows)

    headline: dict[str, Any] = {"area": "bbs", "backend": fast}
    for op in OPS:
        headline[f"{op}_ms"] = round(med[(fast, 10, op)], 4)
    headline["proof_verify_min_ms"] = round(low[(fast, 10, "proof_verify")], 4)
    headline["proof_verify_cpu_ms"] = round(cpu[(fast, 10, "proof_verify")], 4)
    headline["sign_min_ms"] = round(low[(fast, 10, "sign")], 4)
    headline["sign_cpu_ms"] = round(cpu[(fast, 10, "sign")], 4)
    headline["load_average_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    if ("peer", 10, "proof_verify") in med:
        headline["peer_proof_verify_ms"] = round(med[("peer", 10, "proof_verify")], 4)
        headline["peer_ratio"] = round(med[(fast, 10, "proof_verify")] / med[("peer", 10, "proof_verify")], 4)
        headline["peer_ratio_sign"] = round(med[(fast, 10, "sign")] / med[("peer", 10, "sign")], 4)
    if (fast, 100, "proof_verify") in med:
        headline["proof_verify_100_ms"] = round(med[(fast, 100, "proof_verify")], 4)
    if ("py_ecc", 10, "proof_verify") in med:
        headline["py_ecc_proof_verify_ms"] = round(med[("py_ecc", 10, "proof_verify")], 2)
        headline["py_ecc_sign_ms"] = round(med[("py_ecc", 10, "sign")], 2)
        headline["py_ecc_proof_verify_cpu_ms"] = round(cpu[("py_ecc", 10, "proof_verify")], 2)
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
