#!/usr/bin/env python3
"""Where a running server's threads wait in the kernel, sampled: which of them are in
uninterruptible sleep (state D: a sync, a discard, a page being written back), and on what.

Every INTERVAL ms it reads /proc/PID/task/*/stat; for each thread in state D it reads the
kernel stack (/proc/PID/task/TID/stack, root only) and prints one line, with the wall-clock
time, so a slow call the harness logs (`bulkhead-bench neighbours --log-calls-slower-than-ms`)
can be placed against what the server's threads were waiting for then. On Ctrl-C or once the
process is gone it prints, per thread name, the stack tops seen most often
(docs/benchmarks.md, *Segments written and removed in steps*).

    sudo python3 tools/server_waits.py --pid $(pgrep -f 'bulkhead serve') --out waits.log
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time


def thread_state(pid: int, tid: str) -> tuple[str, str] | None:
    """(thread name, state letter), or None if the thread is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    close = stat.rindex(")")
    return stat[stat.index("(") + 1 : close], stat[close + 2]


def kernel_stack(pid: int, tid: str) -> list[str]:
    """The thread's kernel stack, innermost first, function names only."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stack") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return [f"({e.strerror})"]
    return [line.split(" ", 1)[-1].split("+")[0] for line in lines if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--out", help="file for the samples (default: stdout)")
    parser.add_argument("--depth", type=int, default=3, help="stack frames in the summary")
    args = parser.parse_args()
    if args.interval_ms <= 0 or args.depth < 1:
        parser.error("--interval-ms must be above 0 and --depth at least 1")
    if not os.path.isdir(f"/proc/{args.pid}"):
        parser.error(f"no process {args.pid}")

    out = open(args.out, "w") if args.out else sys.stdout
    tops: collections.Counter[tuple[str, str]] = collections.Counter()
    samples = 0
    try:
        while os.path.isdir(f"/proc/{args.pid}"):
            now = time.time()
            try:
                tids = os.listdir(f"/proc/{args.pid}/task")
            except FileNotFoundError:
                break
            for tid in tids:
                seen = thread_state(args.pid, tid)
                if seen is None or seen[1] != "D":
                    continue
                name = seen[0]
                stack = kernel_stack(args.pid, tid)
                samples += 1
                tops[(name, " < ".join(stack[: args.depth]))] += 1
                print(f"{now:.3f} {tid} {name} {' < '.join(stack)}", file=out, flush=True)
            time.sleep(args.interval_ms / 1000)
    except KeyboardInterrupt:
        pass
    finally:
        if args.out:
            out.close()
    print(f"server_waits: {samples} thread samples in state D", file=sys.stderr)
    for (name, stack), n in tops.most_common(20):
        print(f"{n:6} {name:16} {stack}", file=sys.stderr)


if __name__ == "__main__":
    main()
