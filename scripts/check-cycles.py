#!/usr/bin/env python3
"""Fails when modules of a workspace crate depend on each other in a cycle (`just lint`).

Every crate under crates/ is read from its source files (Python 3.11 standard library only).
A module is a file: src/lib.rs or src/main.rs is the crate root, src/a.rs or src/a/mod.rs is
`a`, src/a/b.rs is `a::b`. A module depends on another when its code names a path into it:
`crate::a::…` (in a `use`, grouped `use crate::{a, b::c}` included, or inline), `super::…`
and `self::…` resolved from where they are written, and `x::…` for a child declared `mod x;`. Inline `mod tests { … }` blocks are left
out: tests may use anything.

The graph is checked at every level of the tree: the children of one parent, with the parent
itself (the items of its mod.rs or lib.rs) as one more node. An edge between two modules counts
between the ancestors of each that are siblings at that level, so `a::x` using `b::y` is an
edge a → b at the top. A cycle at any level is printed with the references that make it.

Usage: check-cycles.py [--self-test] [CRATES_DIR]
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
TESTS_BLOCK = re.compile(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{")
COMMENT = re.compile(r"//[^\n]*")
CHILD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;", re.M)


def module_of(src: str, path: str) -> tuple[str, ...]:
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main") and len(rel) == 1:
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


def strip_tests(code: str) -> str:
    """Removes `#[cfg(test)] mod x { … }` blocks (brace matching, good enough for our code)."""
    out, pos = [], 0
    for m in TESTS_BLOCK.finditer(code):
        if m.start() < pos:
            continue
        out.append(code[pos : m.start()])
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        pos = i
    out.append(code[pos:])
    return "".join(out)


def grouped(code: str, start: int) -> list[str]:
    """The first segment of every path inside the `{…}` that opens at `start`."""
    depth, i, body = 0, start, []
    while i < len(code):
        c = code[i]
        depth += {"{": 1, "}": -1}.get(c, 0)
        body.append(c)
        i += 1
        if depth == 0:
            break
    inner = "".join(body)[1:-1]
    firsts, depth, item = [], 0, ""
    for c in inner + ",":
        if c == "," and depth == 0:
            name = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", item)
            if name:
                firsts.append(name.group(1))
            item = ""
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        item += c
    return firsts


def references(code: str, here: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Absolute module paths (as far as they go) that `code`, written in module `here`, names."""
    found = []
    for m in PATH.finditer(code):
        kind, rest = m.group(1), m.group(2)
        if kind == "crate":
            base: tuple[str, ...] = ()
        elif kind == "self":
            base = here
        else:  # super: the parent of the module the file defines
            base = here[:-1]
        if rest == "::{":
            for first in grouped(code, m.end() - 1):
                if first not in ("self", "super", "crate"):
                    found.append(base + (first,))
            continue
        found.append(base + tuple(rest.split("::")[1:]))
    # Child modules named without a prefix (`mod x;` … `x::f()`, `use x::T`).
    for child in CHILD.findall(code):
        if re.search(rf"(?<![\w:]){child}::", code):
            found.append(here + (child,))
    return found


def load(crates_dir: str) -> dict[str, dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]]]:
    """For each crate: module → [(referenced path, the line that names it)]."""
    crates = {}
    for name in sorted(os.listdir(crates_dir)):
        src = os.path.join(crates_dir, name, "src")
        if not os.path.isdir(src):
            continue
        modules: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = {}
        for root, _, files in os.walk(src):
            for f in files:
                if not f.endswith(".rs"):
                    continue
                path = os.path.join(root, f)
                here = module_of(src, path)
                with open(path, encoding="utf-8") as fh:
                    code = COMMENT.sub("", strip_tests(fh.read()))
                refs = []
                for target in references(code, here):
                    refs.append((target, os.path.relpath(path, crates_dir)))
                modules[here] = refs
        crates[name] = modules
    return crates


def resolve(target: tuple[str, ...], modules) -> tuple[str, ...]:
    """The longest prefix of `target` that is a module (the rest names an item in it)."""
    for n in range(len(target), -1, -1):
        if target[:n] in modules:
            return target[:n]
    return ()


def cycles(modules) -> list[str]:
    """Every cycle, at every level of the module tree, described with its references."""
    problems = []
    parents = {m[:-1] for m in modules if m} | {()}
    for parent in sorted(parents):
        children = sorted({m[: len(parent) + 1] for m in modules if len(m) > len(parent) and m[: len(parent)] == parent})
        if not children:
            continue
        nodes = [parent] + children
        edges: dict[tuple, dict[tuple, str]] = {n: {} for n in nodes}

        def node(m):
            if m[: len(parent)] != parent:
                return None
            return m[: len(parent) + 1] if len(m) > len(parent) else parent

        for module, refs in modules.items():
            a = node(module)
            if a is None:
                continue
            for target, where in refs:
                b = node(resolve(target, modules))
                if b is None or b == a:
                    continue
                # A child naming its ancestors is how Rust nests; only sibling edges and
                # the parent reaching into a child that reaches back count.
                edges[a].setdefault(b, f"{where} names {'::'.join(('crate',) + target)}")
        problems += find_cycles(nodes, edges, parent)
    return problems


def find_cycles(nodes, edges, parent) -> list[str]:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                def label(m):
                    name = "::".join(("crate",) + m)
                    return f"{name} (itself)" if m and m == parent else name

                lines = [f"  {label(a)} -> {label(b)}: {why}" for a in group for b, why in edges[a].items() if b in group]
                out.append(f"cycle among {', '.join(sorted(label(m) for m in group))}:\n" + "\n".join(sorted(lines)))

    for v in nodes:
        if v not in index:
            strong(v)
    return out


def check(crates_dir: str) -> list[str]:
    problems = []
    for crate, modules in load(crates_dir).items():
        problems += [f"{crate}: {p}" for p in cycles(modules)]
    return problems


def self_test() -> None:
    cases = {
        "siblings that use each other": ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::B;", "b.rs": "use crate::a::A;"}, True),
        "a grouped use closes the cycle": ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::{b::B, c};", "b.rs": "fn f() { crate::a::g() }"}, True),
        "a parent and a child that uses its items": ({"lib.rs": "mod a;", "a/mod.rs": "mod x;\npub struct T; fn f() { x::g() }", "a/x.rs": "use super::T;"}, True),
        "a chain is fine": ({"lib.rs": "mod a; mod b; mod c;", "a.rs": "use crate::b::B;", "b.rs": "use crate::c::C;", "c.rs": ""}, False),
        "tests may use anything": ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::B;", "b.rs": "#[cfg(test)]\nmod tests {\n use crate::a::A;\n}\n"}, False),
        "a child that only names its parent": ({"lib.rs": "mod a; pub struct T;", "a.rs": "use crate::T;"}, False),
    }
    failed = 0
    for name, (files, cyclic) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            for rel, code in files.items():
                path = os.path.join(d, "demo", "src", rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(code)
            found = bool(check(d))
        ok = found == cyclic
        failed += not ok
        print(f"self-test {'ok  ' if ok else 'FAIL'}  {name}: {'cycle found' if found else 'no cycle'}")
    if failed:
        sys.exit(1)


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--self-test"]:
        self_test()
        return
    crates_dir = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "crates")
    problems = check(crates_dir)
    for p in problems:
        print(p)
    if problems:
        print(f"check-cycles: {len(problems)} module cycle(s); move what both sides need into a module of its own")
        sys.exit(1)
    print("check-cycles: no module cycle in crates/")


if __name__ == "__main__":
    main()
