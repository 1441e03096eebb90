"""`struct_list`: lists of struct dicts for the jsii provider bindings.

jsii's Python bindings convert a dict argument into its struct class, and a struct's dict fields
too, but not dicts inside *lists*: those cross to JavaScript as plain maps, where the struct's
camelCase property names are expected. Passing snake_case keys there fails at synth with
"Missing required properties". This converts such lists once, at the call site.
"""

from __future__ import annotations

from typing import Any

#: Map-typed values whose keys are data (tag names, log options), never struct properties.
_OPAQUE = {"tags", "labels", "logDestination"}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _convert(value: Any) -> Any:
    if isinstance(value, dict):
        return {(_camel(k)): (v if _camel(k) in _OPAQUE else _convert(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v) for v in value]
    return value


def struct_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_convert(i) for i in items]
