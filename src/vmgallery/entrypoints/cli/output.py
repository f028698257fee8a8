"""Printing results as az does: `--query` (JMESPath) first, then `--output json|table|tsv|none`.

JSON is indented with sorted keys (jsonc, az's coloured JSON, is accepted and printed as plain JSON); tsv writes
one line per item with the item's scalar values in key order (nested objects as empty fields, lists as their
length); table uses the command's columns, or, after a `--query`, the scalar fields of whatever the query returned,
and leaves out a column that is empty in every row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from enum import Enum
from typing import Any

import jmespath
import typer
from jmespath.exceptions import JMESPathError

from .arm import resource_group_of
from .client import CliError

# (header, value) pairs; the value is a JMESPath expression, or a function of the item for what JMESPath cannot say.
Columns = tuple[tuple[str, str | Callable[[dict], Any]], ...]


class OutputFormat(str, Enum):
    json = "json"
    jsonc = "jsonc"
    table = "table"
    tsv = "tsv"
    none = "none"


def flatten(resource: dict) -> dict:
    """The shape AAZ commands print: `properties.*` lifted to the top, plus `resourceGroup`."""
    flat = {k: v for k, v in resource.items() if k != "properties"}
    flat.update(resource.get("properties") or {})
    if resource.get("id"):
        flat["resourceGroup"] = resource_group_of(resource["id"])
    return flat


def emit(result: Any, output: OutputFormat, query: str | None, columns: Columns) -> None:
    if query:
        try:
            result = jmespath.search(query, result)
        except JMESPathError as exc:
            raise CliError(f"argument --query: invalid jmespath_type value: {query!r} ({exc})") from None
    if output is OutputFormat.none:
        return
    if output in (OutputFormat.json, OutputFormat.jsonc):
        text = json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False)
    elif output is OutputFormat.tsv:
        text = _tsv(result)
    else:
        text = _table(result, None if query else columns)
    typer.echo(text.rstrip("\n"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return str(value)


def _tsv(result: Any) -> str:
    rows = result if isinstance(result, list) else [result]
    lines = []
    for row in rows:
        if isinstance(row, dict):
            lines.append("\t".join(_cell(v) for _, v in sorted(row.items())))
        elif isinstance(row, list):
            lines.append("\t".join(_cell(v) for v in row))
        else:
            lines.append(_cell(row))
    return "\n".join(lines)


def _title(key: str) -> str:
    """az's column names: camelCase keys become CamelCase headers."""
    return key[:1].upper() + key[1:]


def _auto_rows(result: Any) -> tuple[list[str], list[list[str]]]:
    items = result if isinstance(result, list) else [result]
    if not all(isinstance(i, dict) for i in items):
        return ["Result"], [[_cell(i)] for i in items]
    headers: list[str] = []
    for item in items:
        headers += [k for k, v in item.items() if not isinstance(v, (dict, list)) and k not in headers]
    return [_title(h) for h in headers], [[_cell(i.get(h)) for h in headers] for i in items]


def _value(value: str | Callable[[dict], Any], item: dict) -> Any:
    return value(item) if callable(value) else jmespath.search(value, item)


def _table(result: Any, columns: Columns | None) -> str:
    if result is None:
        return ""
    if columns:
        items = result if isinstance(result, list) else [result]
        headers = [h for h, _ in columns]
        rows = [[_cell(_value(value, item)) for _, value in columns] for item in items]
    else:
        headers, rows = _auto_rows(result)
    if rows:
        shown = [i for i in range(len(headers)) if any(r[i] for r in rows)]
        headers, rows = [headers[i] for i in shown], [[r[i] for i in shown] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(re.sub(r"\s+$", "", line) for line in lines)
