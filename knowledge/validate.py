"""The one validator of the knowledge base: ``build(cls, mapping, where)`` checks a YAML mapping against
a dataclass's type hints (enums, optionals, lists, mappings, nested dataclasses, dates) and raises
:class:`KnowledgeError` with one message shape:

    The 'params' field of models.yaml:12 must be a positive integer. Got -3 instead.

``where_of``, ``error``, ``choice_error`` and ``nearest`` make the same messages for the checks that
run after loading (``knowledge.checks``), the scenario and the plan contract."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import typing
import math
from typing import Any, Optional

from knowledge.errors import KnowledgeError



class _Missing:
    pass


MISSING = _Missing()


def normalize_word(text: Any) -> str:
    """'Named-Entity Recognition ' -> 'named_entity_recognition'."""
    return "_".join(str(text).strip().lower().replace("-", " ").replace("_", " ").split())


def where_of(data: Any, key: Optional[str], default: str) -> str:
    """'file:line' of ``key`` inside a mapping loaded by ``knowledge.loader``."""
    lines = getattr(data, "lines", None)
    origin = getattr(data, "origin", None)
    if origin is None:
        return default
    line = lines.get(key) if (lines and key is not None) else getattr(data, "line", None)
    return f"{origin}:{line}" if line else origin


def error(field_name: str, where: str, expected: str, got: Any) -> KnowledgeError:
    from knowledge.reading import got as quote, show

    return KnowledgeError(
        f"The '{show(field_name)}' field of {where} must be {expected}. Got {quote(got)} instead."
    )


def nearest(word: str, choices, n: int = 3) -> list[str]:
    if not isinstance(word, (str, int, float, enum.Enum)) or len(str(word)) > 200:
        return []  # no hint for a structure or a huge value (and no quadratic matching)
    choices = [str(c) for c in choices]
    return difflib.get_close_matches(str(word), choices, n=n, cutoff=0.5)


def choice_error(field_name: str, where: str, got: Any, choices) -> KnowledgeError:
    from knowledge.reading import got as quote, show

    choices = sorted(str(c) for c in choices)
    close = nearest(got, choices)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return KnowledgeError(
        f"The '{show(field_name)}' field of {where} must be one of {show(', '.join(choices), 2000)}. "
        f"Got {quote(got)} instead.{hint}"
    )


def _check(value: Any, hint: Any, name: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _check(value, next(a for a in args if a is not type(None)), name, where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise choice_error(name, where, value, [m.value for m in hint]) from None
    if hint is bool:
        if not isinstance(value, bool):
            raise error(name, where, "true or false", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise error(name, where, "an integer", value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise error(name, where, "a number", value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise error(name, where, "a string", value)
        return value
    if origin is list or hint is list:
        if not isinstance(value, list):
            raise error(name, where, "a list", value)
        (item,) = args or (Any,)
        return [_check(v, item, f"{name}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise error(name, where, "a mapping", value)
        if args:
            return {str(k): _check(v, args[1], f"{name}.{k}", where_of(value, k, where))
                    for k, v in value.items()}
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    raise TypeError(f"unsupported schema type {hint!r}")  # a bug in this file


_HINTS: dict[type, dict[str, Any]] = {}


def build(cls: type, data: Any, where: str):
    """Check ``data`` (a YAML mapping) against dataclass ``cls`` and build it."""
    if not isinstance(data, dict):
        from knowledge.reading import got

        raise KnowledgeError(
            f"The entry at {where} must be a mapping of {cls.__name__} fields. Got {got(data)} instead."
        )
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    entry_where = where_of(data, None, where)
    unknown = [k for k in data if k not in fields]
    if unknown:
        from knowledge.reading import show

        close = nearest(unknown[0], fields)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise KnowledgeError(
            f"The '{show(str(unknown[0]))}' field of {where_of(data, unknown[0], entry_where)} is not a "
            f"{cls.__name__} field (known: {', '.join(fields)}).{hint}"
        )
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KnowledgeError(
                    f"The '{name}' field of {entry_where} is required for a {cls.__name__}. "
                    f"Got nothing instead."
                )
            continue
        kwargs[name] = _check(data[name], hints[name], name, where_of(data, name, entry_where))
    obj = cls(**kwargs)
    if hasattr(obj, "params") and isinstance(obj.params, int) and obj.params <= 0:
        raise error("params", where_of(data, "params", entry_where), "a positive integer", obj.params)
    if hasattr(obj, "check_fields"):  # an entry's own checks beyond its type hints
        obj.check_fields(lambda name: where_of(data, name, entry_where))
    return obj


def number(lo=None, hi=None, lo_open=False, hi_open=False, integer=False, note=""):
    """A number constraint: ``(test, what was expected)``, the one form every later check uses (the plan
    contract's fields, the thresholds). The test refuses bools, non-finite values and, for
    ``integer``, fractions; bounds are closed unless ``lo_open``/``hi_open``."""
    kind = "an integer" if integer else "a number"
    parts = []
    if lo is not None:
        parts.append(f"{'above' if lo_open else 'at least'} {lo:g}")
    if hi is not None:
        parts.append(f"{'below' if hi_open else 'at most'} {hi:g}")
    expected = kind + (" " + " and ".join(parts) if parts else "") + (f" ({note})" if note else "")

    def test(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if integer and not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
            return False
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if lo is not None and (v <= lo if lo_open else v < lo):
            return False
        if hi is not None and (v >= hi if hi_open else v > hi):
            return False
        return True

    return test, expected
