"""A small reader for the Go struct definitions vendored under `charts/*/vendor/` and a validator of a
YAML/JSON document against them (the way `encoding/json` / `sigs.k8s.io/yaml` would decode it).

It understands what those files use: `type X struct {...}` with `json:"name,omitempty"` tags, inline
(`json:",inline"` or tagless) embedding, pointers, slices, maps and named types (`type X string`).
Types from packages that are not vendored are looked up in `external` (a scalar kind or a field map);
anything else from another package is accepted as any value and said so in the docs of the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_TYPE_DECL = re.compile(r"^type\s+(\w+)\s+(.+?)\s*$")
_FIELD = re.compile(r"^\s+(\w+)\s+([^\s`]+)\s*(?:`([^`]*)`)?")
_EMBED = re.compile(r"^\s+(\*?[\w.]+)\s*(?:`([^`]*)`)?\s*(?://.*)?$")
_JSON_TAG = re.compile(r'json:"([^"]*)"')

_NUMBER = {"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
           "float32", "float64", "time.Duration"}  # time.Duration decodes from a JSON number (nanoseconds)


@dataclass(frozen=True)
class Field:
    json_name: str
    type_expr: str
    inline: bool


@dataclass(frozen=True)
class GoTypes:
    structs: dict[str, list[Field]]
    named: dict[str, str]  # type X <expr> for non-struct declarations
    docs: dict[str, str]   # struct name -> its body text (comments included), for lists documented there


def parse_go(*sources: str) -> GoTypes:
    """Struct and named-type declarations of one Go package (several files may be passed)."""
    structs: dict[str, list[Field]] = {}
    named: dict[str, str] = {}
    docs: dict[str, str] = {}
    for src in sources:
        lines = src.splitlines()
        i = 0
        while i < len(lines):
            m = _TYPE_DECL.match(lines[i])
            i += 1
            if not m:
                continue
            name, rest = m.groups()
            if rest != "struct {":
                if not rest.startswith("struct"):
                    named[name] = rest.split("//")[0].strip()
                continue
            fields: list[Field] = []
            body_start = i
            while i < len(lines) and lines[i] != "}":
                line = lines[i]
                i += 1
                if line.strip().startswith("//") or not line.strip():
                    continue
                f = _FIELD.match(line)
                if f and f.group(2) not in ("//",) and not f.group(2).startswith("`"):
                    go_name, expr, tag = f.groups()
                    fields.append(_field(go_name, expr, tag or ""))
                    continue
                e = _EMBED.match(line)
                if e:
                    expr, tag = e.groups()
                    fields.append(Field("", expr.lstrip("*"), True) if not _tag_name(tag or "")
                                  else _field(expr.split(".")[-1].lstrip("*"), expr, tag or ""))
            docs[name] = "\n".join(lines[body_start:i])
            structs[name] = fields
            i += 1
    return GoTypes(structs, named, docs)


def _tag_name(tag: str) -> str:
    m = _JSON_TAG.search(tag)
    return m.group(1).split(",")[0] if m else ""


def _field(go_name: str, expr: str, tag: str) -> Field:
    m = _JSON_TAG.search(tag)
    if m is None:
        return Field(go_name, expr, False)
    name, *opts = m.group(1).split(",")
    if name == "" and "inline" in opts:
        return Field("", expr.lstrip("*"), True)
    return Field(name or go_name, expr, False)


def kind_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "map" if isinstance(v, dict) else type(v).__name__


class Validator:
    """Validates documents against `types`; `external` maps a qualified Go type (`metav1.Duration`) to a
    scalar kind ("string", "number", "boolean"), to a dict of field name -> type expression (an object
    with exactly those fields), or to "any"."""

    def __init__(self, types: GoTypes, external: Mapping[str, Any]):
        self.types = types
        self.external = external

    def fields(self, struct: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self.types.structs[struct]:
            if f.inline:
                out.update(self._inline_fields(f.type_expr))
            else:
                out[f.json_name] = f.type_expr
        return out

    def _inline_fields(self, expr: str) -> dict[str, str]:
        if expr in self.types.structs:
            return self.fields(expr)
        ext = self.external.get(expr)
        if isinstance(ext, Mapping):
            return dict(ext)
        raise LookupError(f"inline type {expr} is neither vendored nor described in `external`")

    def validate(self, value: Any, expr: str, path: str) -> Iterator[tuple[str, str]]:
        """(path, message) for every place `value` does not decode into Go type `expr`."""
        expr = expr.strip()
        if expr.startswith("*"):
            if value is None:
                return
            expr = expr[1:]
        if expr in ("interface{}", "any"):
            return
        if expr in self.external:  # described by the caller: a custom UnmarshalJSON or a type not vendored
            yield from self._external(value, expr, path)
            return
        if expr.startswith(("[]", "map[")):
            is_list = expr.startswith("[]")
            if value is None:
                return
            if not isinstance(value, list if is_list else dict):
                yield path, f"expected a {'list' if is_list else 'map'} ({expr}), got {kind_of(value)}"
                return
            inner = expr[2:] if is_list else expr[expr.index("]") + 1:]
            items = [(f"[{i}]", v) for i, v in enumerate(value)] if is_list else [(f".{k}", v) for k, v in value.items()]
            for suffix, item in items:
                yield from self.validate(item, inner, path + suffix)
            return
        if expr in self.types.structs:
            yield from self._object(value, expr, self.fields(expr), path)
            return
        if expr in self.types.named:
            yield from self.validate(value, self.types.named[expr], path)
            return
        scalar = {"string": "string", "bool": "boolean"}.get(expr) or ("number" if expr in _NUMBER else None)
        if scalar is not None:
            yield from _scalar(value, scalar, expr, path)
            return
        if "." in expr:  # another package's type that nobody described: any value
            return
        raise LookupError(f"{path}: Go type {expr!r} is not in the vendored sources")

    def _external(self, value: Any, expr: str, path: str) -> Iterator[tuple[str, str]]:
        ext = self.external[expr]
        if ext == "any":
            return
        if isinstance(ext, str):
            yield from _scalar(value, ext, expr, path)
        else:
            yield from self._object(value, expr, ext, path)

    def _object(self, value: Any, expr: str, known: Mapping[str, str], path: str) -> Iterator[tuple[str, str]]:
        if value is None:
            return
        if not isinstance(value, dict):
            yield path, f"expected a map ({expr}), got {kind_of(value)}"
            return
        for k, v in value.items():
            if k not in known:
                yield f"{path}.{k}", f"unknown field of {expr} (known: {', '.join(sorted(known))})"
            else:
                yield from self.validate(v, known[k], f"{path}.{k}")


def _scalar(value: Any, kind: str, expr: str, path: str) -> Iterator[tuple[str, str]]:
    if value is not None and kind_of(value) != kind:
        yield path, f"expected a {kind} ({expr}), got {kind_of(value)} {value!r}"
