"""Small checks shared by every resource's rules. Each names the property it rejects (`target`) and the bad value.

Enum values arrive as people type them ("linux", "v2"): `check_enum` returns and stores the canonical spelling.
Properties Azure's schema does not name are dropped (`prune`), as Azure's compute provider does. Strings have
length limits: Azure documents only those of names and tags, so the others are ours, generous for real use:
descriptions 4096 characters, EULAs 16384, URIs 2048, any other string 16384.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, TypeVar, overload
from urllib.parse import urlsplit

from .errors import InvalidParameter, InvalidRequestContent, MissingRequiredProperty, PropertyChangeNotAllowed
from .ids import normalize_location

Body = dict[str, Any]

MAX_TAGS = 50
MAX_DESCRIPTION = 4096
MAX_EULA = 16384
MAX_URI = 2048
MAX_STRING = 16384
# Azure refuses these in tag names; control characters are refused in names and values alike.
TAG_NAME_FORBIDDEN = set("<>%&\\?/")


def require_object(parent: Body, key: str, *, required: bool, target: str | None = None) -> Body:
    """Return parent[key] as a dict; an absent optional object reads as a detached {} (and a null one is dropped)."""
    target = target or key
    value = parent.get(key)
    if value is None:
        if required:
            raise MissingRequiredProperty(f"Required property '{target}' is missing.", target)
        parent.pop(key, None)
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestContent(f"'{target}' must be a JSON object, not {type(value).__name__}.", target)
    return value


T = TypeVar("T")


def given(value: T | None, what: str) -> T:
    """A part a normalized spec always has for its kind (the rules that made the spec checked it is there)."""
    if value is None:
        raise ValueError(f"a normalized spec lacks {what}")
    return value


@overload
def check_string(
    parent: Body, key: str, target: str, *, required: Literal[True], max_len: int | None = None
) -> str: ...


@overload
def check_string(
    parent: Body, key: str, target: str, *, required: bool = False, max_len: int | None = None
) -> str | None: ...


def check_string(
    parent: Body, key: str, target: str, *, required: bool = False, max_len: int | None = None
) -> str | None:
    value = parent.get(key)
    if value is None:
        if required:
            raise MissingRequiredProperty(f"Required property '{target}' is missing.", target)
        parent.pop(key, None)
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"'{target}' must be a string, not {value!r}.", target)
    if required and not value.strip():
        raise InvalidParameter(f"'{target}' must not be empty.", target)
    if max_len is not None and len(value) > max_len:
        raise InvalidParameter(f"'{target}' is {len(value)} characters long; the limit is {max_len}.", target)
    return value


@overload
def check_enum(
    parent: Body, key: str, allowed: Iterable[str], target: str, *, required: Literal[True], default: None = None
) -> str: ...


@overload
def check_enum(
    parent: Body, key: str, allowed: Iterable[str], target: str, *, required: bool = False, default: str
) -> str: ...


@overload
def check_enum(
    parent: Body, key: str, allowed: Iterable[str], target: str, *, required: bool = False, default: None = None
) -> str | None: ...


def check_enum(
    parent: Body, key: str, allowed: Iterable[str], target: str, *, required: bool = False, default: str | None = None
) -> str | None:
    allowed = tuple(allowed)
    value = parent.get(key)
    if value is None:
        if required:
            raise MissingRequiredProperty(
                f"Required property '{target}' is missing; it must be one of {', '.join(allowed)}.", target
            )
        if default is None:
            parent.pop(key, None)
            return None
        parent[key] = default
        return default
    if isinstance(value, str):
        for canonical in allowed:
            if canonical.lower() == value.lower():
                parent[key] = canonical
                return canonical
    raise InvalidParameter(f"'{value}' is not a valid value for '{target}'; allowed: {', '.join(allowed)}.", target)


def check_uri(parent: Body, key: str, target: str) -> str | None:
    value = check_string(parent, key, target, max_len=MAX_URI)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidParameter(f"'{value}' is not a valid absolute http(s) URI for '{target}'.", target)
    return value


def check_int(
    parent: Body, key: str, target: str, *, minimum: int | None = None, maximum: int = 2**31 - 1
) -> int | None:
    value = parent.get(key)
    if value is None:
        parent.pop(key, None)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"'{target}' must be an integer, not {value!r}.", target)
    if minimum is not None and value < minimum:
        raise InvalidParameter(f"'{target}' is {value}; it must be at least {minimum}.", target)
    if value > maximum:
        raise InvalidParameter(f"'{target}' is {value}; it must be at most {maximum}.", target)
    return value


def parse_datetime(value: Any, target: str) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise InvalidParameter(f"'{value}' is not an ISO-8601 date-time for '{target}'.", target)


def check_datetime(parent: Body, key: str, target: str) -> str | None:
    value = parent.get(key)
    if value is None:
        parent.pop(key, None)
        return None
    parse_datetime(value, target)
    return str(value)


def fold_location(body: Body) -> None:
    """Store the location as Azure folds it, so "East US" against a stored "eastus" reads as no change."""
    if isinstance(body.get("location"), str):
        body["location"] = normalize_location(body["location"])


def check_tags(body: Body) -> None:
    tags = body.get("tags")
    if tags is None:
        body.pop("tags", None)
        return
    if not isinstance(tags, dict):
        raise InvalidParameter(f"'tags' must be an object of string values, not {tags!r}.", "tags")
    if len(tags) > MAX_TAGS:
        raise InvalidParameter(f"{len(tags)} tags given; a resource may have at most {MAX_TAGS}.", "tags")
    for name, value in tags.items():
        if not name or len(name) > 512:
            raise InvalidParameter(f"Tag name '{name[:512]}' must be 1-512 characters long.", f"tags.{name[:512]}")
        if TAG_NAME_FORBIDDEN & set(name) or _has_control(name):
            raise InvalidParameter(
                f"Tag name {name!r} contains a character tag names cannot hold (<, >, %, &, \\, ?, / or a control "
                "character).",
                "tags",
            )
        if value is None:
            tags[name] = ""
        elif not isinstance(value, str) or len(value) > 256 or _has_control(value):
            raise InvalidParameter(
                f"Tag '{name}' must have a string value of at most 256 characters, without control characters.",
                f"tags.{name}",
            )


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def prune(value: Any, node: Any, target: str = "") -> Any:
    """`value` without the properties the schema `node` does not name, at every depth (a copy).

    A node is None (the value is kept whole), a dict of property name to node ("*" standing for any name), or
    [node] for an array; a value of another shape than its node is kept for the rules to refuse by name. Every
    string kept, keys included, is at most MAX_STRING characters.
    """
    if isinstance(node, dict) and isinstance(value, dict):
        out = {}
        for key, item in value.items():
            child = node.get(key, node.get("*", _DROP)) if isinstance(key, str) else _DROP
            if child is not _DROP:
                at = f"{target}.{key}" if target else key
                _check_length(key, at)
                out[key] = prune(item, child, at)
        return out
    if isinstance(node, list) and isinstance(value, list):
        return [prune(item, node[0], f"{target}[{i}]") for i, item in enumerate(value)]
    _check_strings(value, target)
    return copy.deepcopy(value)


_DROP = object()


def _check_length(text: str, target: str) -> None:
    if len(text) > MAX_STRING:
        raise InvalidParameter(
            f"'{target[:200]}' is {len(text)} characters long; the limit is {MAX_STRING}.", target[:200]
        )


def _check_strings(value: Any, target: str) -> None:
    pending = [(value, target)]
    while pending:
        item, at = pending.pop()
        if isinstance(item, str):
            _check_length(item, at)
        elif isinstance(item, dict):
            for k, v in item.items():
                _check_length(str(k), at)
                pending.append((v, f"{at}.{k}"))
        elif isinstance(item, list):
            pending.extend((v, f"{at}[{i}]") for i, v in enumerate(item))


def strip_read_only(body: Body, paths: Iterable[str]) -> Body:
    """A deep copy of body without the read-only fields (clients send them back: az updates are GET + full PUT).

    A path is dotted property names; `name[key]` steps into every item of the array `name` (see carry_read_only).
    """
    if not isinstance(body, dict):
        raise InvalidRequestContent("The request body must be a JSON object.", None)
    body = copy.deepcopy(body)
    for path in paths:
        *parents, leaf = path.split(".")
        nodes: list[Any] = [body]
        for p in parents:
            name, _, match = p.partition("[")
            children = [n.get(name) for n in nodes if isinstance(n, dict)]
            nodes = [i for c in children if isinstance(c, list) for i in c] if match else children
        for node in nodes:
            if isinstance(node, dict):
                node.pop(leaf, None)
    return body


def carry_read_only(old: Body, new: Body, paths: Iterable[str]) -> Body:
    """A copy of `new` with the server-set fields of `old` at `paths` (provisioningState excepted): an update never
    loses them, whether the request left them out or they were stripped from it. `name[key]` in a path steps into
    the array `name`, pairing its items in old and new by their `key` (e.g. `dataDiskImages[lun]`)."""
    new = copy.deepcopy(new)
    for path in paths:
        *parents, leaf = path.split(".")
        if leaf != "provisioningState" and isinstance(old, dict):
            _carry(old, new, parents, leaf)
    return new


def _carry(src: Body, dst: Body, segments: list[str], leaf: str) -> None:
    if not segments:
        if leaf in src:
            dst[leaf] = copy.deepcopy(src[leaf])
        return
    name, _, match = segments[0].partition("[")
    below, here = segments[1:], src.get(name)
    if match:
        key, items = match.rstrip("]"), dst.get(name)
        if isinstance(here, list) and isinstance(items, list):
            stored = {i.get(key): i for i in here if isinstance(i, dict) and isinstance(i.get(key), int | str)}
            for item in items:
                if isinstance(item, dict) and isinstance(item.get(key), int | str) and item[key] in stored:
                    _carry(stored[item[key]], item, below, leaf)
        return
    if not isinstance(here, dict):
        return
    child = dst.get(name)
    if child is None:
        child = {}
        _carry(here, child, below, leaf)
        if child:
            dst[name] = child
    elif isinstance(child, dict):
        _carry(here, child, below, leaf)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a JSON object by dotted path; lists are leaves, empty objects vanish."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value} if value is not None else {}


def forbid_changes(old: Body, new: Body, updatable: set[str], kind: str) -> None:
    """Reject an update that touches anything outside `updatable` (dotted prefixes), naming the first such path."""
    before, after = flatten(old), flatten(new)
    for path in sorted(set(before) | set(after)):
        if any(path == u or path.startswith(u + ".") for u in updatable):
            continue
        if before.get(path) != after.get(path):
            raise PropertyChangeNotAllowed(
                f"Changing property '{path}' of an existing {kind} is not allowed "
                f"(from {before.get(path)!r} to {after.get(path)!r}); only "
                f"{', '.join(sorted(updatable))} may change.",
                path,
            )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge: how PATCH bodies apply to the stored resource."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def data_disk_luns(data: object, target: str, name: str, max_lun: int) -> list[tuple[int, Body, int]]:
    """(index, disk, lun) of each entry of a data-disk list, every lun present, in range and used once."""
    if not isinstance(data, list):
        raise InvalidParameter(f"'{target}' must be a list, not {type(data).__name__}.", target)
    luns: dict[int, int] = {}
    out: list[tuple[int, Body, int]] = []
    for i, disk in enumerate(data):
        at = f"{target}[{i}]"
        if not isinstance(disk, dict):
            raise InvalidParameter(f"'{at}' must be an object with a lun, not {disk!r}.", at)
        lun = check_int(disk, "lun", f"{at}.lun", minimum=0, maximum=max_lun)
        if lun is None:
            raise MissingRequiredProperty(f"Required property '{at}.lun' is missing.", f"{at}.lun")
        if lun in luns:
            raise InvalidParameter(
                f"Data disk lun {lun} is used twice: {name}[{luns[lun]}] and {name}[{i}]; "
                "each data disk needs its own lun.",
                f"{at}.lun",
            )
        luns[lun] = i
        out.append((i, disk, lun))
    return out
