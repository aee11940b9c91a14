#!/usr/bin/env python3
"""Reference numbers from hnswlib on the same fvecs/ivecs files as `bulkhead-bench ann`.

Prints one JSON object per ef with the same fields as bulkhead-bench ("index": "hnswlib"),
so the two outputs can be compared line by line. Queries are issued one per knn_query call,
as a server would receive them. Requires: pip install hnswlib numpy
"""

import argparse
import json
import sys
import threading
import time

import hnswlib
import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        sys.exit(f"{path}: file is empty")
    dim = int(raw[0])
    if dim <= 0:
        sys.exit(f"{path}: first row declares dimension {dim}")
    if raw.size % (dim + 1):
        sys.exit(f"{path}: truncated or inconsistent rows (size {raw.size * 4} bytes, dim {dim})")
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        sys.exit(f"{path}: rows have differing dimensions")
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--groundtruth", required=True)
    ap.add_argument("--metric", default="cosine", choices=["cosine", "dot", "l2"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--build-threads", type=int, default=None,
                    help="threads for index construction (default: --threads)")
    ap.add_argument("--json", action="store_true", help="accepted for symmetry; output is always JSON")
    args = ap.parse_args()

    base = read_vecs(args.base, np.float32)
    queries = read_vecs(args.query, np.float32)
    truth = read_vecs(args.groundtruth, np.int32)
    if queries.shape[1] != base.shape[1]:
        sys.exit(f"query dimension {queries.shape[1]} differs from base dimension {base.shape[1]}")
    if truth.shape[0] < queries.shape[0] or truth.shape[1] < args.k:
        sys.exit(f"ground truth {truth.shape} too small for {queries.shape[0]} queries at k={args.k}")
    efs = [int(e) for e in args.ef.split(",") if e]
    space = {"cosine": "cosine", "dot": "ip", "l2": "l2"}[args.metric]
    n, dim = base.shape
    print(f"base {n} x {dim}, {len(queries)} queries", file=sys.stderr)

    index = hnswlib.Index(space=space, dim=dim)
    index.init_index(max_elements=n, M=args.m, ef_construction=args.ef_construction, random_seed=100)
    build_threads = args.build_threads or args.threads
    index.set_num_threads(build_threads)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(n))
    build_s = time.perf_counter() - t0
    print(f"built hnswlib index in {build_s:.2f} s with {build_threads} thread(s)", file=sys.stderr)
    index.set_num_threads(1)

    k = args.k
    nq = len(queries)
    for ef in efs:
        index.set_ef(max(ef, k))
        labels = [None] * nq
        lat = np.zeros(nq)
        counter = iter(range(nq))
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    q = next(counter, None)
                if q is None:
                    return
                t = time.perf_counter()
                got, _ = index.knn_query(queries[q:q + 1], k=k)
                lat[q] = time.perf_counter() - t
                labels[q] = got[0]

        t0 = time.perf_counter()
        if args.threads == 1:
            worker()
        else:
            threads = [threading.Thread(target=worker) for _ in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        wall = time.perf_counter() - t0
        hits = sum(len(set(labels[q][:k]) & set(truth[q, :k])) for q in range(nq))
        lat_us = np.sort(lat) * 1e6
        print(json.dumps({
            "index": "hnswlib", "ef": ef, "k": k, "recall": round(hits / (nq * k), 4),
            "qps": round(nq / wall, 1), "p50_us": round(float(np.percentile(lat_us, 50)), 1),
            "p99_us": round(float(np.percentile(lat_us, 99)), 1), "build_s": round(build_s, 2),
            "threads": args.threads,
        }), flush=True)


if __name__ == "__main__":
    main()
