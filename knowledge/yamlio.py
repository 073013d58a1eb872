"""YAML as tlexpert reads it (scenarios, plans, knowledge, batch inputs): PyYAML's safe loader with
the limits of ``knowledge.reading`` (aliases, nesting, integer digits, string length), duplicate keys
refused, and mappings that remember the line of each key for error messages."""

from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path
from typing import Any, Optional, Union

from knowledge import reading  # its LIMITS are read at call time (tests narrow them)
from knowledge.errors import KnowledgeError
from knowledge.reading import MiB, ReadError, got, parse_json, read_text, show

# --- YAML


class LineDict(dict):
    """A dict that remembers its file and the line of each key."""

    origin: str = ""
    line: int = 0
    lines: dict


_INT_TAG = "tag:yaml.org,2002:int"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@functools.lru_cache(maxsize=None)
def _line_loader():
    """The YAML loader, made on first use (PyYAML is imported only when a YAML file is read): PyYAML's
    safe loader (the C one where built) whose mappings remember their lines, duplicate keys are
    refused, and an exponent without a dot is a number."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is several times faster

    class _LineLoader(base):
        _origin = ""

    _LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    # YAML 1.1 reads an exponent without a dot (2e-05, as JSON and Python write it) as a string; YAML 1.2
    # and JSON read it as a number: so does this loader (a plan written as JSON reads back the same).
    _LineLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
    return _LineLoader


def _check_nodes(root, origin: str) -> None:
    """Bound a composed YAML graph before building it: nesting, alias expansion, scalar sizes."""
    import yaml

    if root is None:
        return
    seen: dict[int, int] = {}  # id(node) -> expanded size
    unique = 0
    stack: list = [(root, 1, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            if isinstance(node, yaml.SequenceNode):
                size = 1 + sum(seen[id(c)] for c in node.value)
            else:
                size = 1 + sum(seen[id(k)] + seen[id(v)] for k, v in node.value)
            seen[nid] = size
            if size - unique > reading.LIMITS.alias_nodes:
                line = node.start_mark.line + 1
                raise ReadError(f"{show(origin)}:{line}: YAML aliases expand to more than "
                                f"{reading.LIMITS.alias_nodes:,} extra values (an alias bomb?); write the values out")
            continue
        if nid in seen:
            continue
        if nid in on_path:
            raise ReadError(f"{show(origin)}:{node.start_mark.line + 1}: a YAML alias refers to itself "
                            f"(a recursive structure)")
        if depth > reading.LIMITS.depth:
            raise ReadError(f"{show(origin)}:{node.start_mark.line + 1}: nested more than {reading.LIMITS.depth} "
                            f"levels deep")
        unique += 1
        if isinstance(node, yaml.ScalarNode):
            line = node.start_mark.line + 1
            if len(node.value) > reading.LIMITS.string_chars:
                raise ReadError(f"{show(origin)}:{line}: a value of {len(node.value):,} characters; at most "
                                f"{reading.LIMITS.string_chars:,} are accepted")
            if node.tag == _INT_TAG and len(node.value) > reading.LIMITS.int_digits:
                raise ReadError(f"{show(origin)}:{line}: an integer of {len(node.value):,} digits; at most "
                                f"{reading.LIMITS.int_digits} are accepted")
            seen[nid] = 1
            continue
        on_path.add(nid)
        stack.append((node, depth, True))
        children = node.value if isinstance(node, yaml.SequenceNode) else [c for kv in node.value for c in kv]
        for c in children:
            stack.append((c, depth + 1, False))


def _construct_mapping(loader, node, deep=False):
    import yaml

    own: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        if isinstance(key_node, yaml.ScalarNode):
            key = loader.construct_object(key_node, deep=True)
            try:
                first = own.get(key)
            except TypeError:
                first = None
            if first is not None:
                raise ReadError(f"{show(loader._origin)}:{key_node.start_mark.line + 1}: duplicate key "
                                f"{got(key)} (first at line {first}); each key may appear once")
            with contextlib.suppress(TypeError):
                own[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)
    out = LineDict()
    out.origin = loader._origin
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ReadError(f"{show(loader._origin)}:{key_node.start_mark.line + 1}: a mapping key must be "
                            f"a plain value") from None
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def parse_yaml(text: str, origin: str, *, json_syntax: bool = False) -> Any:
    """Parse YAML (or JSON, checked as JSON first) text; mappings come back as ``LineDict``."""
    if len(text) > reading.LIMITS.structured_bytes:
        raise ReadError(f"{show(origin)}: larger than {reading.LIMITS.structured_bytes // MiB} MiB")
    if json_syntax:  # YAML would accept some broken JSON (e.g. a missing value)
        parse_json(text, origin)
    import yaml

    loader = _line_loader()(text)
    loader._origin = origin
    try:
        node = loader.get_single_node()
        # without aliases, values longer than the limit or long digit runs, no limit can be exceeded
        if "*" in text or len(text) > reading.LIMITS.string_chars or re.search(
                "[0-9_]{%d}" % (reading.LIMITS.int_digits + 1), text):
            _check_nodes(node, origin)
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ReadError(f"{show(origin)}{line}: malformed YAML/JSON ({show(problem)})") from None
    except RecursionError:
        raise ReadError(f"{show(origin)}: nested too deeply") from None
    except KnowledgeError:
        raise
    except (ValueError, KeyError, TypeError, OverflowError, IndexError, AttributeError) as exc:
        # an explicit tag PyYAML cannot build (``!!bool 7``, ``!!int x``, ``!!timestamp 2020-13-45``)
        raise ReadError(f"{show(origin)}: a value cannot be read as its YAML type ({show(str(exc))})") from None
    finally:
        loader.dispose()


def read_yaml(path: Union[str, Path], text: Optional[str] = None, origin: Optional[str] = None) -> Any:
    """Read a YAML or JSON file (scenario, plan, knowledge, batch input) with the limits above."""
    origin = origin or str(path)
    if text is None:
        text = read_text(path, kind="structured", origin=origin)
    return parse_yaml(text, origin, json_syntax=Path(path).suffix.lower() == ".json")


