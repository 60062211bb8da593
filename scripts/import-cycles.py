#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

Each file is a module. A module uses another when it names a path into it: `use
crate::a::b::X`, `super::c::Y`, `self::d`, a child module's name, or such a path inline in
code (`mod x;` declarations are not uses). A name that a module only imports (`use`, `pub
use`) is followed to the module that defines it, so a facade's re-exports (`mod.rs` with
`pub use child::Thing`) tie no one to the facade. A child using items of its ancestors
(`super::Config`) uses the context it lives in, and does not count.

A cycle is a strongly connected set of modules: none of them can be read without the
others (`runner::dispatch` using `runner::write` while `write` uses `dispatch`).

    python3 scripts/import-cycles.py            # every crate; exit 1 when a cycle is found
    python3 scripts/import-cycles.py -v         # also each use that ties a cycle

Only `src/` of each crate is read; comments, strings and `#[cfg(test)] mod tests { ... }`
blocks are skipped.
"""

import os
import re
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(r"(?<![A-Za-z0-9_:])(" + IDENT + r"(?:::" + IDENT + r")+)")
USE_RE = re.compile(r"\buse\s+([^;]+);", re.S)
MOD_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", re.M)


def crates():
    for name in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, name, "src")
        if os.path.isfile(os.path.join(ROOT, name, "Cargo.toml")) and os.path.isdir(src):
            yield name, src
    if os.path.isdir(os.path.join(ROOT, "src")):
        yield "datatrace", os.path.join(ROOT, "src")


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)


def blank(text):
    """The code with comments removed and string and char literals emptied."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"[A-Za-z0-9_]", text[i - 1 : i] or " "):
            hashes = re.match(r"r(#*)", text[i:]).group(1)
            close = '"' + hashes
            j = text.find(close, i + len(hashes) + 2)
            i = n if j < 0 else j + len(close)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:]):
            i += re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).end()
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip(text):
    """The code without comments, strings and `#[cfg(test)]` modules."""
    text = blank(text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+" + IDENT + r"\s*\{", text):
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


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (only paths matter, not names)."""
    tree = re.sub(r"\s+as\s+(" + IDENT + ")", r"@\1", tree)
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in expand_use(prefix + part)]


def imports_of(text):
    """name -> the path it imports, for every `use` of a module's file."""
    names = {}
    for u in USE_RE.findall(text):
        for path in expand_use(u):
            path, _, alias = path.partition("@")
            segs = path.split("::")
            if segs[-1] in ("*", "self"):
                continue
            names[alias or segs[-1]] = path
    return names


def resolve(here, path, modules, children, imports, depth=0):
    """The module (a key of `modules`) that defines what a path written in `here` names."""
    segs = [s for s in path.split("::") if s]
    if not segs or depth > 8:
        return None
    if segs[0] == "crate":
        mod, segs = (), segs[1:]
    elif segs[0] in ("super", "self"):
        mod = here
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                mod = mod[:-1]
            segs = segs[1:]
    elif segs[0] in children.get(here, ()):
        mod = here
    else:
        return None
    while segs:
        s = segs[0]
        if mod + (s,) in modules:
            mod, segs = mod + (s,), segs[1:]
        elif s in imports.get(mod, {}):
            target = imports[mod][s]
            rest = "::".join([target] + segs[1:])
            return resolve(mod, rest, modules, children, imports, depth + 1)
        else:
            break
    return mod


def analyse(src):
    modules = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(dirpath, f)
                modules[module_of(src, p)] = p
    children = defaultdict(set)
    texts, imports = {}, {}
    for mod, p in modules.items():
        with open(p, encoding="utf-8") as fh:
            texts[mod] = strip(fh.read())
        children[mod].update(MOD_RE.findall(texts[mod]))
        imports[mod] = imports_of(texts[mod])
    succ, why = defaultdict(set), defaultdict(set)
    for here, text in texts.items():
        paths = set(PATH_RE.findall(USE_RE.sub("", text)))
        for u in USE_RE.findall(text):
            paths.update(p.partition("@")[0] for p in expand_use(u))
        for path in paths:
            to = resolve(here, path, modules, children, imports)
            if to is not None and to != here:
                succ[here].add(to)
                why[(here, to)].add(path)
    return modules, succ, why


def sccs(nodes, succ):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    verbose = "-v" in sys.argv[1:]
    found, n = 0, 0
    for name, src in crates():
        n += 1
        modules, succ, why = analyse(src)
        for here in succ:
            succ[here] = {to for to in succ[here] if to != here[: len(to)]}
        for comp in sccs(set(modules), succ):
            found += 1
            names = ["::".join(("crate",) + m) for m in comp]
            print(f"{name}: cycle: {' <-> '.join(names)}")
            if verbose:
                for a in comp:
                    for b in sorted(succ.get(a, ())):
                        if b in comp:
                            for p in sorted(why[(a, b)]):
                                print(f"    {'::'.join(('crate',) + a)} uses {p}")
    if not found:
        print(f"no import cycles between the modules of {n} crates")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
