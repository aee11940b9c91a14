#!/usr/bin/env python3
"""`bulkhead-bench ann` and `tools/hnswlib_bench.py` side by side, taking turns.

This machine's speed drifts by tens of percent within minutes, so one run of each says little.
The two take --rounds turns on the same files with the same settings (single-thread queries,
the same M and ef_construction), and the table gives each one's median QPS and recall per ef
and the ratio of the medians. Requires the hnswlib_bench.py requirements and a release build
of bulkhead-bench (--bench).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench", required=True, help="path of the bulkhead-bench binary")
    ap.add_argument("--data", required=True, help="directory with base/query/groundtruth")
    ap.add_argument("--ef", default="16,32,48,64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--build-threads", type=int, default=2)
    args = ap.parse_args()
    files = [
        "--base", os.path.join(args.data, "base.fvecs"),
        "--query", os.path.join(args.data, "query.fvecs"),
        "--groundtruth", os.path.join(args.data, "groundtruth.ivecs"),
        "--metric", "cosine", "--k", "10", "--ef", args.ef, "--m", str(args.m),
        "--ef-construction", str(args.ef_construction), "--threads", "1",
        "--build-threads", str(args.build_threads),
    ]
    here = os.path.dirname(os.path.abspath(__file__))
    results = {"bulkhead": [], "hnswlib": []}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        results["bulkhead"] += run([args.bench, "ann", *files, "--json"])
        results["hnswlib"] += run([sys.executable, os.path.join(here, "hnswlib_bench.py"), *files])
    print("| ef | Bulkhead recall@10 | Bulkhead QPS (median) | hnswlib recall@10 | hnswlib QPS (median) | ratio | Bulkhead bytes/vector | build s (Bulkhead / hnswlib) |")
    print("|---|---|---|---|---|---|---|---|")
    for ef in [int(e) for e in args.ef.split(",")]:
        ours = [x for x in results["bulkhead"] if x["ef"] == ef]
        theirs = [x for x in results["hnswlib"] if x["ef"] == ef]
        q_ours = statistics.median(x["qps"] for x in ours)
        q_theirs = statistics.median(x["qps"] for x in theirs)
        print(
            f"| {ef} | {statistics.median(x['recall'] for x in ours):.4f} | {q_ours:,.0f} "
            f"| {statistics.median(x['recall'] for x in theirs):.4f} | {q_theirs:,.0f} "
            f"| **{q_ours / q_theirs:.2f}** | {ours[0]['bytes_per_vector']} "
            f"| {statistics.median(x['build_s'] for x in ours):.1f} / "
            f"{statistics.median(x['build_s'] for x in theirs):.1f} |"
        )


if __name__ == "__main__":
    main()
