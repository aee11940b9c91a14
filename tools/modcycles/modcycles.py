#!/usr/bin/env python3
"""Import cycles between the modules of a Rust crate.

A module that uses an item of another while the other (directly or through others) uses one of
its own is a cycle: neither can be understood, tested or moved without the other. This reads
every `crate::…` and `super::…` path in a crate's `src/` (use declarations and inline paths),
maps each to the module it names, and prints every strongly connected component of more than
one module. A module's uses of its own ancestors or descendants are not counted: a parent
declaring and re-exporting its children, and children using their parent's types, is how a
Rust module tree is built, not a cycle between peers.

Usage: modcycles.py CRATE_DIR...   (exit 1 if any crate has a cycle)
"""

import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod … { … }` blocks: tests may reach anywhere."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def referenced(module: tuple[str, ...], text: str) -> set[tuple[str, ...]]:
    """Every module path that `text` (the source of `module`) names."""
    paths = []
    for m in USE_GROUP.finditer(text):
        prefix = m.group(1) + m.group(2)
        for item in re.split(r"[,\s]+", m.group(3)):
            item = re.sub(r"\s+as\s+\w+", "", item).strip("{} ")
            if item and item != "self":
                paths.append(prefix + "::" + item.split("::")[0])
            elif item == "self":
                paths.append(prefix)
    paths += [m.group(1) + m.group(2) for m in PATH.finditer(text)]
    out = set()
    # A module's `super` is its parent, whether it is a `mod.rs` or a file of its own.
    for p in paths:
        head, *rest = p.split("::")
        if head == "crate":
            out.add(tuple(rest))
        else:
            base = list(module[:-1])
            while rest and rest[0] == "super":
                rest = rest[1:]
                base = base[:-1]
            out.add(tuple(base + rest))
    return out


def cycles(crate: Path) -> list[list[str]]:
    src = crate / "src"
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f): f for f in files}

    def resolve(path: tuple[str, ...]) -> tuple[str, ...] | None:
        for n in range(len(path), -1, -1):
            if path[:n] in modules:
                return path[:n]
        return None

    def related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
        return a[: len(b)] == b or b[: len(a)] == a

    graph: dict[tuple[str, ...], set[tuple[str, ...]]] = {m: set() for m in modules}
    for module, file in modules.items():
        text = strip_tests(strip_comments(file.read_text()))
        for path in referenced(module, text):
            target = resolve(path)
            if target is not None and not related(module, target):
                graph[module].add(target)

    # Tarjan's strongly connected components.
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted("::".join(c) or "crate" for c in comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return comps


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = False
    for arg in sys.argv[1:]:
        crate = Path(arg)
        comps = cycles(crate)
        for comp in comps:
            found = True
            print(f"{crate.name}: cycle between {', '.join(comp)}")
        if not comps:
            print(f"{crate.name}: no module cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
