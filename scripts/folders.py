#!/usr/bin/env python3
"""Which folders of each Swift module use which, checked for cycles and drawn for docs/architecture.md.

Swift has no imports between the folders of one module: any file may name any type of its module. This script reads
the sources as a compiler's lexer would (comments and string literals left out, the code of string interpolations
kept), finds the file that declares each top-level type, and counts a use of folder B by folder A whenever a file of A
names a type declared in B. Files directly in a module's folder are its composition root (the command,
`buildApplication`, the request context): they may use every folder and are left out.

    scripts/folders.py check     exit 1, naming the files and types that make them, when the folders of a module
                                 reach each other in a cycle, or when docs/architecture.md's picture is out of date
    scripts/folders.py write     rewrite the picture in docs/architecture.md
    scripts/folders.py show      print each module's uses

Text-based: a type used only through inference (`.init(...)`, a closure's parameter) adds no edge, and two types of one
name in different modules are one name here. It errs on the side of edges, never of hiding a direct use by name.
"""
from __future__ import annotations

import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field

ROOTS = ("Services", "Shared")
DOC = "docs/architecture.md"
BEGIN = "<!-- folders:begin (scripts/folders.py write) -->"
END = "<!-- folders:end -->"
DECLARATION_KEYWORDS = {"struct", "class", "enum", "protocol", "actor", "typealias"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokens(source: str) -> list[str]:
    """The identifiers and braces of Swift source, without comments and string literals (interpolations kept)."""
    out: list[str] = []
    n = len(source)

    def string(i: int, hashes: int, multiline: bool) -> int:
        """From just after the opening quote(s) to just after the closing ones; interpolated code is read as code."""
        close = ('"""' if multiline else '"') + "#" * hashes
        escape = "\\" + "#" * hashes
        while i < n:
            if source.startswith(close, i):
                return i + len(close)
            if source.startswith(escape, i):
                i += len(escape)
                if i < n and source[i] == "(":
                    i = code(i + 1, interpolation=True)
                else:
                    i += 1
                continue
            if not multiline and source[i] == "\n":
                return i  # unterminated: the compiler would refuse it; the line ends it here
            i += 1
        return i

    def code(i: int, interpolation: bool = False) -> int:
        """Reads code from `i`; inside an interpolation, up to and past the `)` that closes it."""
        parentheses = 0
        while i < n:
            c = source[i]
            if source.startswith("//", i):
                end = source.find("\n", i)
                i = n if end < 0 else end
            elif source.startswith("/*", i):
                depth, i = 1, i + 2
                while i < n and depth:
                    if source.startswith("/*", i):
                        depth, i = depth + 1, i + 2
                    elif source.startswith("*/", i):
                        depth, i = depth - 1, i + 2
                    else:
                        i += 1
            elif c == "#" or c == '"':
                hashes = 0
                while i + hashes < n and source[i + hashes] == "#":
                    hashes += 1
                quote = i + hashes
                if quote < n and source[quote] == '"':
                    multiline = source.startswith('"""', quote)
                    i = string(quote + (3 if multiline else 1), hashes, multiline)
                else:
                    i += max(hashes, 1)  # a directive: #if, #expect, #selector
            elif c == "(":
                parentheses += 1
                i += 1
            elif c == ")":
                i += 1
                if interpolation and parentheses == 0:
                    return i
                parentheses -= 1
            elif c in "{}":
                if not interpolation:
                    out.append(c)
                i += 1
            elif c.isalpha() or c == "_":
                match = IDENTIFIER.match(source, i)
                out.append(match.group(0))
                i = match.end()
            elif c == "`":
                end = source.find("`", i + 1)
                out.append(source[i + 1:end] if end > 0 else "")
                i = end + 1 if end > 0 else n
            else:
                i += 1
        return i

    code(0)
    return out


@dataclass
class Module:
    root: str
    folders: list[str] = field(default_factory=list)
    # (user folder, used folder) -> {(file of the user, type name)}
    uses: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))

    def edges(self) -> set[tuple[str, str]]:
        return set(self.uses)

    def cycles(self) -> list[list[str]]:
        """The groups of folders that reach each other (Tarjan's strongly connected components of two or more)."""
        graph = defaultdict(set)
        for a, b in self.uses:
            graph[a].add(b)
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        groups: list[list[str]] = []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in sorted(graph[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

        for v in self.folders:
            if v not in index:
                visit(v)
        return groups

    def layers(self) -> list[list[str]]:
        """The folders from those that use no other up to the composition: a folder sits above all it uses."""
        level: dict[str, int] = {}

        def depth(v: str, seen: frozenset = frozenset()) -> int:
            if v not in level:
                below = [b for (a, b) in self.uses if a == v and b not in seen]
                level[v] = 1 + max((depth(b, seen | {v}) for b in below), default=-1)
            return level[v]

        for v in self.folders:
            depth(v)
        layers: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for v in self.folders:
            layers[level[v]].append(v)
        return layers

    def reduced_edges(self) -> list[tuple[str, str]]:
        """The uses not implied by others (A → C is left out of the picture when A → B → C): the same order, drawn
        with fewer lines."""
        edges = self.edges()
        graph = defaultdict(set)
        for a, b in edges:
            graph[a].add(b)

        def reachable(start: str, skip: tuple[str, str]) -> set[str]:
            seen, todo = set(), [start]
            while todo:
                v = todo.pop()
                for w in graph[v]:
                    if (v, w) != skip and w not in seen:
                        seen.add(w)
                        todo.append(w)
            return seen

        return sorted((a, b) for a, b in edges if b not in reachable(a, (a, b)))


def read_module(root: str) -> Module | None:
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".swift"))
    if not files:
        return None
    module = Module(root)

    def folder(path: str) -> str | None:
        parts = os.path.relpath(path, root).split(os.sep)
        return parts[0] if len(parts) > 1 else None

    read = {path: tokens(open(path, encoding="utf-8").read()) for path in files}
    declared: dict[str, str] = {}
    for path, toks in read.items():
        depth = 0
        for i, tok in enumerate(toks):
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
            elif depth == 0 and tok in DECLARATION_KEYWORDS and i + 1 < len(toks) and toks[i + 1][:1].isupper():
                declared.setdefault(toks[i + 1], path)
    module.folders = sorted({f for f in map(folder, files) if f})
    for path, toks in read.items():
        user = folder(path)
        if user is None:
            continue
        for tok in set(toks):
            home = declared.get(tok)
            used = folder(home) if home else None
            if used and used != user:
                module.uses[(user, used)].add((os.path.relpath(path, root), tok))
    return module


def modules() -> list[Module]:
    found = []
    for top in ROOTS:
        if not os.path.isdir(top):
            continue
        for name in sorted(os.listdir(top)):
            if os.path.isdir(os.path.join(top, name)) and (module := read_module(os.path.join(top, name))):
                found.append(module)
    return found


def describe_cycles(module: Module) -> list[str]:
    lines = []
    for group in module.cycles():
        lines.append(f"{module.root}: the folders {', '.join(group)} reach each other:")
        for a in group:
            for b in group:
                if (a, b) in module.uses:
                    places = sorted(module.uses[(a, b)])
                    shown = "; ".join(f"{file} names {name}" for file, name in places[:4])
                    more = f" (and {len(places) - 4} more)" if len(places) > 4 else ""
                    lines.append(f"  {a} -> {b}: {shown}{more}")
    return lines


def picture(found: list[Module]) -> str:
    out = [BEGIN, ""]
    for module in found:
        if len(module.folders) < 2:
            continue
        name = os.path.basename(module.root)
        out.append(f"**{name}** (`{module.root}/`): an arrow from a folder to one it uses (uses that follow from others"
                   " are left out of the picture); layer 0 uses none.")
        out.append("")
        out.append("```mermaid")
        out.append("flowchart BT")
        for folder in module.folders:
            out.append(f"    {folder}[{folder}/]")
        for a, b in module.reduced_edges():
            out.append(f"    {a} --> {b}")
        out.append("```")
        out.append("")
        out.append("| layer | folders |")
        out.append("| ---: | --- |")
        for number, layer in reversed(list(enumerate(module.layers()))):
            out.append(f"| {number} | {', '.join(layer)} |")
        out.append("")
    out.append(END)
    return "\n".join(out)


def document_with(text: str, section: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} has no section between '{BEGIN}' and '{END}'")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + section + text[end:]


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    found = modules()
    if command == "show":
        for module in found:
            print(f"== {module.root}")
            for folder in module.folders:
                used = sorted({b for (a, b) in module.uses if a == folder})
                print(f"  {folder} -> " + (", ".join(f"{b} ({len(module.uses[(folder, b)])})" for b in used) or "-"))
            print("\n".join(describe_cycles(module)) or "  no cycles")
        return 0
    current = open(DOC, encoding="utf-8").read()
    wanted = document_with(current, picture(found))
    if command == "write":
        if wanted != current:
            open(DOC, "w", encoding="utf-8").write(wanted)
        return 0
    if command != "check":
        print(__doc__)
        return 2
    problems = [line for module in found for line in describe_cycles(module)]
    if wanted != current:
        problems.append(f"{DOC}: the picture of the folders is out of date; run scripts/folders.py write")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"folders: no cycles in {len(found)} modules; {DOC} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
