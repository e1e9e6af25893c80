"""`cartrial translations update|check`: the one gettext catalog, kept complete.

Texts are found where they are written (no hand-kept list):
- Python: the literal argument of `N_`, `_`, `gettext`, `gettext_lazy`, `pgettext`, `ngettext`...
  and the literal first argument of every `DomainError` subclass and of `Message(...)`;
- templates: `{% translate %}` and `{% blocktranslate %}`, through Django's own `templatize`.

`update` adds new texts to `src/cartrial/locale/fr/LC_MESSAGES/django.po` (empty, to translate),
keeps existing translations and compiles the `.mo`; `check` fails (exit 1) when a text has no
French translation, the `.mo` is stale, or an error is raised with a pre-formatted message
(an f-string, `+`, `%` or `.format()` as msgid cannot be translated). Needs Babel (dev extra).
"""

from __future__ import annotations

import ast
import io
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # babel is a development dependency: imported only by the commands that use it
    from babel.messages.catalog import Catalog

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PO_FILE = PACKAGE_DIR / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")

_MARKERS = {
    "N_": (None, 0),
    "_": (None, 0),
    "gettext": (None, 0),
    "gettext_lazy": (None, 0),
    "gettext_noop": (None, 0),
    "pgettext": (0, 1),
    "pgettext_lazy": (0, 1),
    "ngettext": (None, 0),
    "ngettext_lazy": (None, 0),
    "Message": (None, 0),
}
_ERROR_ROOTS = {"DomainError", "InvalidInput", "Refused", "NotFound", "AccessDenied"}
_TEMPLATE_CALL = re.compile(r"\b(gettext|pgettext|ngettext|npgettext)\(")


@dataclass
class Extraction:
    """Texts found (context, msgid) → where, and the places that raise untranslatable messages."""

    texts: dict[tuple[str | None, str], list[str]] = field(default_factory=dict)
    plurals: dict[tuple[str | None, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, context: str | None, msgid: str, where: str, plural: str | None = None) -> None:
        if msgid.strip():
            self.texts.setdefault((context, msgid), []).append(where)
            if plural:
                self.plurals[(context, msgid)] = plural


def _python_files() -> Iterator[Path]:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """Names of every DomainError subclass whose first argument is a msgid (following base names).

    A subclass whose own `__init__` takes something else first (a refusal code looked up in a
    table of msgids, like `TransitionRefused`) is left out: its table is marked with `N_`.
    """
    names = set(_ERROR_ROOTS)
    other_first: set[str] = set()
    changed = True
    while changed:
        changed = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names | other_first:
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                    if not bases & (names | other_first):
                        continue
                    first = _first_parameter(node)
                    if (first is not None and first != "msgid") or bases & other_first:
                        other_first.add(node.name)
                    else:
                        names.add(node.name)
                    changed = True
    return names


def _first_parameter(node: ast.ClassDef) -> str | None:
    """The name of the first argument of the class's own `__init__` after self, if it defines one."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            arguments = [*item.args.posonlyargs, *item.args.args][1:]
            return arguments[0].arg if arguments else ""
    return None


def _callee(node: ast.Call) -> str:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return ""


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _preformatted(node: ast.expr) -> bool:
    """An argument built from pieces: English frozen before any translation could happen."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return any(isinstance(side, ast.Constant | ast.JoinedStr) for side in (node.left, node.right))
    return isinstance(node, ast.Call) and _callee(node) == "format" and isinstance(node.func, ast.Attribute)


def extract() -> Extraction:
    """Every translatable text of the package and every untranslatable error message."""
    found = Extraction()
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in _python_files()}
    errors = _error_classes(trees)
    for path, tree in trees.items():
        rel = path.relative_to(PACKAGE_DIR.parent)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _callee(node)
            where = f"{rel}:{node.lineno}"
            if name in _MARKERS:
                context_index, text_index = _MARKERS[name]
                if len(node.args) > text_index:
                    text = _literal(node.args[text_index])
                    context = _literal(node.args[context_index]) if context_index is not None else None
                    if text is not None:
                        plural = _literal(node.args[1]) if name.startswith("ngettext") and len(node.args) > 1 else None
                        found.add(context, text, where, plural)
                    elif _preformatted(node.args[text_index]):
                        found.problems.append(f"{where}: {name}() of a pre-formatted text")
            elif name in errors:
                text = _literal(node.args[0])
                if text is not None:
                    found.add(None, text, where)
                elif _preformatted(node.args[0]):
                    found.problems.append(f"{where}: {name} raised with a pre-formatted message (use a msgid)")
    _extract_templates(found)
    return found


def _extract_templates(found: Extraction) -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    from django.utils.translation.template import templatize

    for path in sorted(PACKAGE_DIR.rglob("*.html")) + sorted(PACKAGE_DIR.rglob("*.txt")):
        if "locale" in path.parts:
            continue
        rel = path.relative_to(PACKAGE_DIR.parent)
        code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
        for line_number, line in enumerate(code.splitlines(), start=1):
            for match in _TEMPLATE_CALL.finditer(line):
                arguments = _call_arguments(line, match.end())
                if not arguments:
                    continue
                where = f"{rel}:{line_number}"
                if match.group(1) == "pgettext":
                    found.add(arguments[0], arguments[1], where)
                elif match.group(1) == "npgettext":
                    found.add(arguments[0], arguments[1], where, arguments[2] if len(arguments) > 2 else None)
                else:
                    plural = arguments[1] if match.group(1) == "ngettext" and len(arguments) > 1 else None
                    found.add(None, arguments[0], where, plural)


def _call_arguments(line: str, start: int) -> list[str]:
    """The string literals passed to the call opened at `start` (templatize writes one call per text)."""
    depth, index = 1, start
    while index < len(line) and depth:
        char = line[index]
        if char in "'\"":
            quote = char
            index += 1
            while index < len(line) and line[index] != quote:
                index += 2 if line[index] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        index += 1
    try:
        call = ast.parse("f" + line[start - 1 : index], mode="eval").body
    except SyntaxError:
        return []
    if not isinstance(call, ast.Call):
        return []
    return [value for value in (_literal(arg) for arg in call.args) if value is not None]


def _read_catalog() -> Catalog:
    from babel.messages.pofile import read_po

    with PO_FILE.open("rb") as handle:
        return read_po(handle, locale="fr")


def _compiled(catalog: Catalog) -> bytes:
    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def update() -> int:
    """Add new texts to the catalog (keeping translations), mark vanished ones obsolete, compile."""
    from babel.messages.pofile import write_po

    found = extract()
    catalog = _read_catalog()
    wanted = set(found.texts)
    for (context, msgid), places in found.texts.items():
        message = catalog.get(msgid, context=context)
        locations = [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in places]
        plural = found.plurals.get((context, msgid))
        if message is None:
            if plural:
                catalog.add((msgid, plural), ("", ""), locations=locations, context=context)
            else:
                catalog.add(msgid, "", locations=locations, context=context)
        else:
            message.locations = locations
    for message in list(catalog):
        key = message.id if isinstance(message.id, str) else message.id[0]
        if key and (message.context, key) not in wanted:
            catalog.obsolete[key] = message
            catalog.delete(key, context=message.context)
    with PO_FILE.open("wb") as handle:
        write_po(handle, catalog, width=120, sort_output=True, include_previous=False)
    MO_FILE.write_bytes(_compiled(_read_catalog()))
    missing = _untranslated(found, _read_catalog())
    typer.echo(f"{len(wanted)} texts; {len(missing)} to translate in {PO_FILE}")
    for context, msgid in missing:
        typer.echo(f"  {context + ' | ' if context else ''}{msgid}")
    return 0


def _has_string(string: str | Sequence[str] | None) -> bool:
    """A msgstr, or every plural form of one, is filled in."""
    return bool(string) if string is None or isinstance(string, str) else all(string)


def _untranslated(found: Extraction, catalog: Catalog) -> list[tuple[str | None, str]]:
    missing: list[tuple[str | None, str]] = []
    for context, msgid in sorted(found.texts, key=lambda k: (k[0] or "", k[1])):
        message = catalog.get(msgid, context=context)
        translated = message is not None and not message.fuzzy and _has_string(message.string)
        if not translated:
            missing.append((context, msgid))
    return missing


def check() -> list[str]:
    """What is wrong with the catalog: untranslated texts, a stale `.mo`, untranslatable messages."""
    found = extract()
    catalog = _read_catalog()
    problems = list(found.problems)
    problems += [
        f"no French translation: {context + ' | ' if context else ''}{msgid!r} ({found.texts[(context, msgid)][0]})"
        for context, msgid in _untranslated(found, catalog)
    ]
    if _compiled(catalog) != MO_FILE.read_bytes():
        problems.append(f"{MO_FILE} is not compiled from {PO_FILE.name}: run `cartrial translations update`")
    return problems


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The French catalog: add new texts, check that every text is translated.")

    @group.command("update")
    def update_command() -> None:
        """Add new texts to the catalog, compile it, list what is left to translate."""
        raise typer.Exit(update())

    @group.command("check")
    def check_command() -> None:
        """Exit 1 listing every text without French, a stale .mo or a pre-formatted error message."""
        problems = check()
        for problem in problems:
            typer.echo(problem, err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo("catalog complete")

    app.add_typer(group, name="translations")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(update())
