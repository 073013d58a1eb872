"""The JSON Schema (draft 2020-12) of a plan file, generated from the Plan contract
(``rules.contract``): ``tlexpert plan-schema`` prints it, ``docs/plan.schema.json`` holds it."""

from __future__ import annotations

import dataclasses
import typing

from rules.contract import SCHEMA_VERSION, SIZE_CLASSES, Hyperparameters, Plan, _hints


def _schema_of(hint, f=None) -> dict:
    doc = f.metadata.get("doc", "") if f is not None else ""
    check = f.metadata.get("check") if f is not None else None
    args = typing.get_args(hint)
    inner = next((a for a in args if dataclasses.is_dataclass(a)), None) if args else None
    if dataclasses.is_dataclass(hint) or inner is not None:
        s = _object_schema(inner or hint)
        if inner is not None:
            s = {"anyOf": [s, {"type": "null"}]}
    elif hint is int:
        s = {"type": "integer"}
    elif hint is float:
        s = {"type": "number"}
    elif hint is bool:
        s = {"type": "boolean"}
    elif hint is str:
        s = {"type": "string"}
    elif (typing.get_origin(hint) or hint) is list:
        s = {"type": "array"}
    elif (typing.get_origin(hint) or hint) is dict:
        s = {"type": "object"}
    else:
        s = {}
    if check is not None:
        s["description"] = (doc + "; " if doc else "") + "must be " + check[1]
    elif doc:
        s["description"] = doc
    return s


def _object_schema(cls) -> dict:
    hints = _hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        props[f.name] = _schema_of(hints[f.name], f)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a plan file."""
    s = _object_schema(Plan)
    s["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    s["properties"]["size_class"] = {"enum": list(SIZE_CLASSES)}
    s["properties"]["recipes"] = {"type": "object", "additionalProperties": _object_schema(Hyperparameters),
                                  "description": "the other core techniques' hyperparameters"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "tlexpert plan", **s}
