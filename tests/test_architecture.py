"""The house rules of ARCHITECTURE.md, checked: no import cycle, the core imports no
adapter, the command modules never import the command line's parser back, and no module
grows past ~400 lines unless it is one concept named here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "saraban_mail"

# Pure decisions over plain values: they may import each other, never the shell.
CORE = {"category", "classify", "rules", "calendar", "record", "layout", "thaitext", "audit",
        "schedule", "replies", "errors", "parse", "review", "bounces", "letters", "units",
        "folders", "report", "routing", "sla", "space", "retention"}
SHELL = {"mailbox", "maildir", "send", "journal", "register", "service", "poll", "cli", "files",
         "oauth", "watch", "watcher", "results", "matters", "config", "demo", "mailbox_space",
         "records", "archive"}
CORE |= {"sealing"}  # what is done to a result file, the seal's lines (issue 21)
SHELL |= {"seal"}  # the seal adapter: pyHanko, the PKCS#12, the TSA
# One concept each, longer than 400 lines for that reason (see ARCHITECTURE.md).
LONG = {
    "journal": "the journal: its schema and every query, so SQL lives in one place",
    "register": "the workbook adapter: reading, writing and saving registers with openpyxl",
    "mailbox": "the IMAP adapter: every protocol detail of fetching, moving and appending",
    "results": "sending a result: files, protection, outgoing numbers, rows and the outbox",
    "parse": "the MIME parser's policy: charsets, parts, forwards and the identity of a mail",
    "config": "every setting with its default and its check, in one place (STYLE.md)",
}


def modules() -> dict[str, Path]:
    """Dotted name below saraban_mail (e.g. "poll.intake", "cli") → file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found[".".join(parts)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Every saraban_mail module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("saraban_mail."):
                if node.module == "saraban_mail":
                    found |= {a.name for a in node.names if a.name in known}
                continue
            base = node.module.removeprefix("saraban_mail.")
            for alias in node.names:  # `from saraban_mail.poll import intake` names a module
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("saraban_mail."):
                    found.add(alias.name.removeprefix("saraban_mail."))
    return found & known


def graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: imports(path, known) - {name} for name, path in modules().items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle met in a depth-first walk, as the modules along it."""
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                found.append(trail[trail.index(nxt):] + [node, nxt] if nxt in trail
                             else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_the_core_imports_no_adapter():
    edges = graph()
    wrong = {name: sorted(d for d in deps if d.split(".")[0] in SHELL)
             for name, deps in edges.items() if name in CORE}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_command_modules_never_import_the_parser_back():
    edges = graph()
    assert {name for name, deps in edges.items()
            if name.startswith("cli.") and "cli" in deps} == set()


def test_stages_import_no_command_module():
    edges = graph()
    assert {name for name, deps in edges.items() if not name.startswith("cli") and name != "__main__"
            and any(d == "cli" or d.startswith("cli.") for d in deps)} == set()


def test_no_module_is_long_unless_it_is_one_concept():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines())
             for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > 400 and name not in LONG} == {}
    assert set(LONG) <= set(sizes)  # a module listed here that is gone: drop it


def test_the_checks_find_a_cycle_and_a_lazy_import(tmp_path, monkeypatch):
    """Built from the files: an import inside a function counts, and the cycle shows."""
    import sys

    (tmp_path / "a.py").write_text("from saraban_mail.b import x\n")
    (tmp_path / "b.py").write_text("def x():\n    from saraban_mail import a\n")
    (tmp_path / "c.py").write_text("from saraban_mail import b\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    edges = graph()
    assert edges == {"a": {"b"}, "b": {"a"}, "c": {"b"}}
    assert cycles(edges) == [["a", "b", "a"]]
