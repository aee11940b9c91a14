#!/usr/bin/env python3
"""What a big file's writing and removal cost a neighbour's log sync, on this machine's disk.

A neighbour thread appends 1.6 KB and fdatasyncs every 10 ms (a tenant's one-record upsert
reaching its log), while the main thread, in rounds, writes or removes a big file one way or
the other (docs/benchmarks.md, *Segments written and removed in steps*):

  write-whole   write SIZE bytes, then one fsync (how segments were written)
  write-steps   write SIZE bytes, fdatasync every 1 MiB (disk_pacing::SyncingWriter)
  remove-whole  unlink a file of SIZE bytes (a rename over it frees the same)
  write-paced   as write-steps, at most PACE MiB/s
  remove-steps  cut it 8 MiB at a time, then unlink
  remove-paced  as remove-steps, at most PACE MiB/s
  quiet         sleep as long as the round's longest operation took (the baseline, in the
                same run)

The kinds take turns within each round, so a slow spell of the host's disk falls on all of
them alike. For each kind the neighbour's syncs that started while such an operation ran (or
within 50 ms after it) are pooled, and their p50, p99 and max reported, with the p99 as a
ratio to the quiet kind's.

    python3 tools/disk_neighbour.py --dir /path/on/the/data/disk --size-mib 64 --rounds 10
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

MIB = 1 << 20
WRITEBACK = 1 * MIB
RELEASE = 8 * MIB
AFTER = 0.05


def neighbour(path: str, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    record = b"x" * 1600
    try:
        while not stop.is_set():
            started = time.monotonic()
            os.write(fd, record)
            os.fdatasync(fd)
            out.append((started, time.monotonic() - started))
            time.sleep(0.01)
    finally:
        os.close(fd)


def paced(started: float, done: int, pace: float | None) -> None:
    """Sleeps until `done` bytes since `started` are within `pace` bytes per second."""
    if pace:
        ahead = started + done / pace - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def write_file(path: str, size: int, steps: bool, pace: float | None = None) -> None:
    chunk = os.urandom(WRITEBACK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    started = time.monotonic()
    try:
        for i in range(size // WRITEBACK):
            os.write(fd, chunk)
            if steps:
                os.fdatasync(fd)
                paced(started, (i + 1) * WRITEBACK, pace)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_file(path: str, steps: bool, pace: float | None = None) -> None:
    if steps:
        fd = os.open(path, os.O_WRONLY)
        started = time.monotonic()
        try:
            size = left = os.fstat(fd).st_size
            while left > 0:
                left = max(0, left - RELEASE)
                os.ftruncate(fd, left)
                paced(started, size - left, pace)
        finally:
            os.close(fd)
    os.unlink(path)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=".", help="a directory on the disk to measure")
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between operations")
    parser.add_argument("--pace-mib-s", type=float, default=64.0, help="PACE, in MiB/s")
    args = parser.parse_args()
    if args.size_mib < 1 or args.rounds < 1 or args.pace_mib_s <= 0:
        parser.error("--size-mib and --rounds must be at least 1, --pace-mib-s above 0")
    size = args.size_mib * MIB
    pace = args.pace_mib_s * MIB

    work = tempfile.mkdtemp(prefix="disk-neighbour-", dir=args.dir)
    syncs: list[tuple[float, float]] = []
    stop = threading.Event()
    thread = threading.Thread(target=neighbour, args=(os.path.join(work, "log"), stop, syncs))
    thread.start()
    windows: dict[str, list[tuple[float, float]]] = {}
    kinds = [
        "write-whole",
        "write-steps",
        "write-paced",
        "remove-whole",
        "remove-steps",
        "remove-paced",
        "quiet",
    ]
    try:
        for round_no in range(args.rounds):
            longest = 0.1
            for kind in kinds:
                big = os.path.join(work, "big")
                if kind.startswith("remove"):
                    write_file(big, size, steps=True)
                time.sleep(args.gap)
                started = time.monotonic()
                if kind == "write-whole":
                    write_file(big, size, steps=False)
                elif kind == "write-steps":
                    write_file(big, size, steps=True)
                elif kind == "write-paced":
                    write_file(big, size, steps=True, pace=pace)
                elif kind == "remove-whole":
                    remove_file(big, steps=False)
                elif kind == "remove-steps":
                    remove_file(big, steps=True)
                elif kind == "remove-paced":
                    remove_file(big, steps=True, pace=pace)
                else:
                    time.sleep(longest)
                ended = time.monotonic()
                longest = max(longest, ended - started)
                windows.setdefault(kind, []).append((started, ended + AFTER))
                # Out of the window, and paced: removing it whole is what remove-whole measures.
                time.sleep(2 * AFTER)
                if os.path.exists(big):
                    remove_file(big, steps=True, pace=pace)
            print(f"disk-neighbour: round {round_no + 1}/{args.rounds}", flush=True)
    finally:
        stop.set()
        thread.join()
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)

    results = {}
    for kind, spans in windows.items():
        during = [d * 1000 for (t, d) in syncs if any(s <= t <= e for s, e in spans)]
        seconds = sum(e - s for s, e in spans) / len(spans)
        results[kind] = {
            "syncs": len(during),
            "op_ms": round((seconds - AFTER) * 1000, 1),
            "p50_ms": round(percentile(during, 0.5), 2) if during else None,
            "p99_ms": round(percentile(during, 0.99), 2) if during else None,
            "max_ms": round(max(during), 2) if during else None,
        }
    quiet = results["quiet"]["p99_ms"]
    for kind, r in results.items():
        r["p99_ratio_to_quiet"] = round(r["p99_ms"] / quiet, 2) if quiet and r["p99_ms"] else None
    print(
        json.dumps(
            {
                "size_mib": args.size_mib,
                "rounds": args.rounds,
                "pace_mib_s": args.pace_mib_s,
                "results": results,
            }
        )
    )
    print("| operation | its time ms | neighbour syncs | p50 ms | p99 ms | max ms | p99 / quiet |")
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        r = results[kind]
        print(
            f"| {kind} | {r['op_ms']} | {r['syncs']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['max_ms']} | {r['p99_ratio_to_quiet']} |"
        )


if __name__ == "__main__":
    main()
