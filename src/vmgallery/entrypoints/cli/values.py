"""az's argument value syntaxes: `key=value` tags and features, `--set path=value`, end-of-life dates."""

from __future__ import annotations

import json
from typing import Any

from .client import CliError

# Top-level ARM fields; any other --set path is under `properties`.
ENVELOPE = ("id", "name", "type", "location", "tags", "identity")


def parse_tags(values: list[str]) -> dict[str, str]:
    """`key[=value] ...`; a lone '' clears the tags, as in az."""
    tags: dict[str, str] = {}
    for word in values:
        if word:
            key, _, value = word.partition("=")
            tags[key] = value
    return tags


def parse_features(value: str) -> list[dict[str, str]]:
    """az's --features is one string of space-separated NAME=VALUE words."""
    features = []
    for word in value.split():
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise CliError(f"--features expects NAME=VALUE words, not '{word}'.", "InvalidArgumentValue")
        features.append({"name": name, "value": value})
    return features


def az_bool(value: str | None) -> bool | None:
    """az's boolean words: 0/1, f/t, false/true, n/y, no/yes."""
    if value is None:
        return None
    word = value.strip().lower()
    if word in ("1", "t", "true", "y", "yes"):
        return True
    if word in ("0", "f", "false", "n", "no"):
        return False
    raise CliError(f"'{value}' is not a boolean; use true or false.", "InvalidArgumentValue")


def end_of_life(value: str) -> str:
    """az sends a bare date as the end of that day's first UTC half: '2030-01-01' -> '2030-01-01T12:59:59Z'."""
    return value if "T" in value.upper() else f"{value}T12:59:59Z"


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _key(mapping: dict, name: str) -> str:
    """ARM property names are matched without regard to case, as az's --set does."""
    return next((k for k in mapping if k.lower() == name.lower()), name)


def apply_set(resource: dict, assignments: list[str]) -> None:
    """az's generic `--set path=value` on the flattened view: paths name `properties.*` without the prefix."""
    for assignment in assignments:
        path, sep, raw = assignment.partition("=")
        if not sep or not path:
            raise CliError(f"--set expects PATH=VALUE, not '{assignment}'.", "InvalidArgumentValue")
        parts = path.split(".")
        if parts[0].lower() in ENVELOPE:
            target = resource
        else:
            target = resource.setdefault("properties", {})
            if parts[0].lower() == "properties" and len(parts) > 1:
                parts = parts[1:]
        for part in parts[:-1]:
            key = _key(target, part)
            child = target.get(key)
            if child is None:
                child = target[key] = {}
            if not isinstance(child, dict):
                raise CliError(f"Cannot set '{path}': '{part}' is not an object.", "InvalidArgumentValue")
            target = child
        # Tag values are strings by definition; elsewhere '4' or 'true' mean the number or the boolean, as in az.
        target[_key(target, parts[-1])] = raw if parts[0].lower() == "tags" else _json_or_text(raw)
