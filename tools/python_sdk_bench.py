#!/usr/bin/env python3
"""Query throughput through the Python SDK, as an application sees it: N concurrent callers
(threads on the sync client, or tasks on the asyncio client) each issuing its next query as
soon as the previous one answers, for D seconds, on the debian-minilm queries. It is the
Python side of tools/sdk-throughput.sh, which runs `bulkhead-bench sdk` (the Rust SDK) against
the same server, tenant, key and collection: same load shape (closed loop, top-k, ef, queries
picked at random per caller) and the same JSON line (qps, p50_us, p99_us, recall).

Against a running server that holds the data (as `bulkhead-bench sdk --setup` leaves it):
    python tools/python_sdk_bench.py --endpoint 127.0.0.1:7621 --api-key "$(cat key)" \
        --tenant sdk-bench --collection docs --dataset ../shared/data/debian-minilm --json
On its own server (release build if there is one, no default rate limit), loading the base
vectors through Arrow import first:
    python tools/python_sdk_bench.py --clients 8 --duration 10 --mode both
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bulkhead import AsyncClient, Client, TenantHandle, TlsConfig
from bulkhead.errors import AlreadyExists

REPO = Path(__file__).resolve().parent.parent


def read_vecs(path: Path, dtype: str) -> np.ndarray:
    """An .fvecs/.ivecs file as a (rows, dim) array."""
    raw = np.fromfile(path, dtype="<i4")
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    return np.ascontiguousarray(rows).view(dtype)


def default_binary() -> str | None:
    if os.environ.get("BULKHEAD_BIN"):
        return os.environ["BULKHEAD_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/bulkhead-target"))
    for build in ("release", "debug"):
        if (target / build / "bulkhead").exists():
            return str(target / build / "bulkhead")
    return None


def set_up(client: Client, admin_token: str, args: argparse.Namespace, base: np.ndarray) -> str:
    """Creates the tenant (limits far above the load), a READ key, the collection, loads the
    base vectors by Arrow import and waits for the HNSW index; returns the key's secret."""
    import pyarrow as pa

    admin = client.admin(admin_token)
    try:
        admin.create_tenant(
            args.tenant,
            requests_per_second=1e9,
            burst=1_000_000_000,
            write_bytes_per_second=1 << 40,
        )
    except AlreadyExists:
        pass
    _, secret = admin.create_key(args.tenant, "read", description="python sdk bench")
    writer = client.tenant(args.tenant, api_key=admin_token)
    writer.create_collection(args.collection, base.shape[1], "cosine")
    print(f"bench: importing {len(base)} vectors", file=sys.stderr)
    table = pa.table(
        {
            "id": pa.array([str(i) for i in range(len(base))]),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(base.reshape(-1), type=pa.float32()), base.shape[1]
            ),
        }
    )
    writer.import_arrow(args.collection, table, timeout=600)
    while True:
        index = writer.get_collection(args.collection).index
        if index.get("kind") == "hnsw" and not index.get("building"):
            return secret
        time.sleep(0.2)


def percentile_us(sorted_latencies: list[float], p: float) -> float:
    if not sorted_latencies:
        return 0.0
    return sorted_latencies[round((len(sorted_latencies) - 1) * p)] * 1e6


def recall(answers: list[tuple[int, list[str]]], truth: np.ndarray | None, k: int) -> float | None:
    if truth is None or not answers:
        return None
    found = 0
    for query, ids in answers:
        expected = set(truth[query, :k].tolist())
        found += sum(1 for i in ids if int(i) in expected)
    return found / (len(answers) * k)


def run_threads(
    handle: TenantHandle, args: argparse.Namespace, queries: np.ndarray
) -> tuple[list[float], list[tuple[int, list[str]]], float]:
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    answers: list[list[tuple[int, list[str]]]] = [[] for _ in range(args.clients)]
    start = threading.Barrier(args.clients + 1)
    deadline = 0.0
    errors: list[BaseException] = []

    def caller(c: int) -> None:
        rng = random.Random(c + 1)
        lat, ans = latencies[c], answers[c]
        query, collection, k, ef = handle.query, args.collection, args.k, args.ef
        start.wait()
        try:
            while time.perf_counter() < deadline:
                q = rng.randrange(len(queries))
                t0 = time.perf_counter()
                hits = query(collection, queries[q], k, ef=ef)
                lat.append(time.perf_counter() - t0)
                ans.append((q, [h.id for h in hits]))
        except BaseException as e:  # reported after the run
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    deadline = began + args.duration
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    if errors:
        raise errors[0]
    return sorted(x for lat in latencies for x in lat), [a for ans in answers for a in ans], wall


async def run_asyncio(
    args: argparse.Namespace, secret: str, queries: np.ndarray
) -> tuple[list[float], list[tuple[int, list[str]]], float]:
    latencies: list[float] = []
    answers: list[tuple[int, list[str]]] = []
    async with AsyncClient(args.endpoint, tls=tls_config(args)) as client:
        handle = client.tenant(args.tenant, api_key=secret)
        await handle.query(args.collection, queries[0], args.k, ef=args.ef)  # connect
        began = time.perf_counter()
        deadline = began + args.duration

        async def caller(c: int) -> None:
            rng = random.Random(c + 1)
            while time.perf_counter() < deadline:
                q = rng.randrange(len(queries))
                t0 = time.perf_counter()
                hits = await handle.query(args.collection, queries[q], args.k, ef=args.ef)
                latencies.append(time.perf_counter() - t0)
                answers.append((q, [h.id for h in hits]))

        await asyncio.gather(*(caller(c) for c in range(args.clients)))
        wall = time.perf_counter() - began
    return sorted(latencies), answers, wall


def tls_config(args: argparse.Namespace) -> TlsConfig | None:
    return TlsConfig(ca_cert=args.tls_ca) if args.tls_ca else None


def report(
    args: argparse.Namespace,
    label: str,
    result: tuple[list[float], list[tuple[int, list[str]]], float],
    truth: np.ndarray | None,
) -> None:
    latencies, answers, wall = result
    qps = len(latencies) / wall
    r = recall(answers, truth, args.k)
    line = {
        "mode": "sdk",
        "label": label,
        "clients": args.clients,
        "qps": round(qps, 1),
        "p50_us": round(percentile_us(latencies, 0.5)),
        "p99_us": round(percentile_us(latencies, 0.99)),
        "recall": None if r is None else round(r, 4),
    }
    if args.json:
        print(json.dumps(line, separators=(",", ":")), flush=True)
    else:
        print(
            f"{label}: {args.clients} callers, {qps:,.0f} queries/s, "
            f"p50 {line['p50_us']} us, p99 {line['p99_us']} us, recall@{args.k} {line['recall']}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a running server; default: start one")
    parser.add_argument("--api-key", help="a key of --tenant on --endpoint (data loaded)")
    parser.add_argument("--admin-token", help="with --endpoint and no --api-key: load the data")
    parser.add_argument("--tls-ca", help="PEM CA for an https:// endpoint")
    parser.add_argument("--binary", default=default_binary(), help="server of the own-server run")
    parser.add_argument("--tenant", default="sdk-bench")
    parser.add_argument("--collection", default="docs")
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared/data/debian-minilm")
    parser.add_argument("--base-limit", type=int, default=0, help="base vectors to load (0: all)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ef", type=int, default=64)
    parser.add_argument("--mode", choices=("threads", "asyncio", "both"), default="threads")
    parser.add_argument("--label", default="python", help="label of the JSON line(s)")
    parser.add_argument("--json", action="store_true", help="one JSON line per run")
    parser.add_argument(
        "--cpus",
        help="pin the benchmark to these CPUs (e.g. 1), so it does not compete with a server "
        "pinned to the others, as it wouldn't on separate machines",
    )
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})

    queries = read_vecs(args.dataset / "query.fvecs", "<f4")
    truth_path = args.dataset / "groundtruth.ivecs"
    truth = read_vecs(truth_path, "<i4") if truth_path.exists() else None
    with ExitStack() as stack:
        secret = args.api_key
        if args.endpoint is None:
            from bulkhead.testing import BulkheadServer

            server = stack.enter_context(
                BulkheadServer(args.binary, config={"default-requests-per-second": 0})
            )
            args.endpoint, args.admin_token = server.endpoint, server.admin_token
            print(f"bench: started {args.binary} on {server.endpoint}", file=sys.stderr)
        client = stack.enter_context(Client(args.endpoint, tls=tls_config(args)))
        if secret is None:
            if args.admin_token is None:
                parser.error("--endpoint needs --api-key (data loaded) or --admin-token")
            base = read_vecs(args.dataset / "base.fvecs", "<f4")
            if args.base_limit:
                base = base[: args.base_limit]
                truth = None  # the ground truth is over the whole base
            secret = set_up(client, args.admin_token, args, base)
        handle = client.tenant(args.tenant, api_key=secret)
        handle.query(args.collection, queries[0], args.k, ef=args.ef)  # connect and warm up
        suffix = args.mode == "both"
        if args.mode in ("threads", "both"):
            label = args.label + ("-threads" if suffix else "")
            report(args, label, run_threads(handle, args, queries), truth)
        if args.mode in ("asyncio", "both"):
            label = args.label + ("-asyncio" if suffix else "")
            report(args, label, asyncio.run(run_asyncio(args, secret, queries)), truth)


if __name__ == "__main__":
    main()
