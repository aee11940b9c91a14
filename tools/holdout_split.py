#!/usr/bin/env python3
"""Held-out queries for `bulkhead-bench ann` and `tools/hnswlib_bench.py`.

Takes --count random rows out of a base set (seeded), writes the remaining rows as the new base,
the taken rows as queries, and their exact top-100 among the remaining rows (cosine on the
vectors as given, unit-normalised by the embedding model) as ground truth. Queries then come
from the data's own distribution but are never in the index, unlike tuning on the shipped
queries. Requires: pip install numpy
"""

import argparse
import os
import sys

import numpy as np


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        sys.exit(f"{path}: file is empty")
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        sys.exit(f"{path}: rows have differing dimensions")
    return np.ascontiguousarray(rows[:, 1:]).view(np.float32)


def write_vecs(path, matrix, dtype):
    n, dim = matrix.shape
    out = np.empty((n, dim + 1), dtype=np.int32)
    out[:, 0] = dim
    out[:, 1:] = np.ascontiguousarray(matrix.astype(dtype)).view(np.int32)
    out.tofile(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", required=True)
    ap.add_argument("--out", required=True, help="directory for base/query/groundtruth files")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--depth", type=int, default=100)
    args = ap.parse_args()
    base = read_fvecs(args.base)
    if not 0 < args.count < len(base):
        sys.exit(f"--count must be between 1 and {len(base) - 1}")
    rng = np.random.default_rng(args.seed)
    held = np.zeros(len(base), dtype=bool)
    held[rng.choice(len(base), size=args.count, replace=False)] = True
    kept, queries = base[~held], base[held]
    norms = np.linalg.norm(kept, axis=1)
    truth = np.empty((len(queries), args.depth), dtype=np.int32)
    for start in range(0, len(queries), 256):
        q = queries[start:start + 256]
        sims = (q @ kept.T) / (np.linalg.norm(q, axis=1)[:, None] * norms[None, :])
        top = np.argpartition(-sims, args.depth, axis=1)[:, :args.depth]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        truth[start:start + len(q)] = np.take_along_axis(top, order, axis=1)
    os.makedirs(args.out, exist_ok=True)
    write_vecs(os.path.join(args.out, "base.fvecs"), kept, np.float32)
    write_vecs(os.path.join(args.out, "query.fvecs"), queries, np.float32)
    write_vecs(os.path.join(args.out, "groundtruth.ivecs"), truth, np.int32)
    print(f"{len(kept)} base rows, {len(queries)} held-out queries -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
