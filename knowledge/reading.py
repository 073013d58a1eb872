"""One reading layer for every file tlexpert takes, and one atomic writer for what it writes.

Every input (scenario and plan files, knowledge YAML, batch inputs, training
logs, run folders, data files, journals) goes through the functions below, so
that hostile or broken input ends in one ``ReadError`` (a ``KnowledgeError``:
one ``Error:`` line, exit status 2) naming the file, the line where there is
one, and what was expected, never in a traceback, a hang or unbounded memory.

Limits (``LIMITS``) and why they were chosen:

- file size: structured inputs (YAML/JSON scenarios, plans, knowledge) up to
  64 MiB, logs and journals up to 256 MiB, data files up to 2 GiB. The largest
  real input here, a TweetEval split, is a few MB; a batch of 100,000
  scenarios is about 20 MB of YAML.
- one string (YAML scalar, CSV field, JSON line): 1 MiB. A review, a tweet or
  a log line is far shorter; 1 MiB still takes a whole article per row.
- integer digits: 64. Counts and sizes here fit in 20 digits; Python refuses
  more than 4,300 with a ``ValueError`` and is slow well before that.
- YAML aliases: at most 100,000 nodes added by expanding aliases. Aliases are
  kept for the merge keys teams use, but a 429-byte "billion laughs" file that
  expands to 10^9 nodes is refused before it is built. Nesting is bounded at
  100 levels (libyaml stops at 1,000; JSON recursion at about 1,000).
- folders searched for logs: 6 levels and 20,000 entries.

Paths are resolved safely: a symlink loop, a folder where a file is expected,
FIFOs, sockets, devices and anything under /proc, /sys or /dev are refused
without being opened for reading (a FIFO is opened non-blocking, so nothing
hangs). Output paths are checked before any work starts (``check_output``)
and written through one writer, ``write_atomic`` / ``atomic_path``: a
temporary file in the same folder, then a rename, so a result is either the
old one or the whole new one, never half-written.

``show(value)`` is how user strings are printed: control and bidirectional
characters escaped, long values truncated.

Standard library and PyYAML only: this module loads on every command.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import os
import re
import stat
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union


from knowledge.errors import KnowledgeError


class ReadError(KnowledgeError):
    """An input file (or path) cannot be read as what it should be."""


class OutputError(KnowledgeError):
    """An output path cannot be written."""


MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    structured_bytes: int = 64 * MiB
    log_bytes: int = 256 * MiB
    data_bytes: int = 2048 * MiB
    string_chars: int = 1 * MiB
    int_digits: int = 64
    alias_nodes: int = 100_000
    depth: int = 100
    walk_depth: int = 6
    walk_entries: int = 20_000
    show_chars: int = 120


LIMITS = Limits()
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
STDIN = ("-", "/dev/stdin")
KIND_BYTES = {"structured": "structured_bytes", "log": "log_bytes", "data": "data_bytes"}


# --- printing user strings


def _escape_char(ch: str) -> str:
    if ch in "\t":
        return "\\t"
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def show(value: Any, limit: Optional[int] = None) -> str:
    """``value`` as text safe to print: control, format (e.g. right-to-left override) and
    separator characters escaped, and at most ``limit`` characters kept (with the full length)."""
    limit = limit or LIMITS.show_chars
    text = value if isinstance(value, str) else _short_repr(value, limit)
    cut = len(text) > limit
    head = text[:limit]
    out = "".join(_escape_char(c) if (c != " " and unicodedata.category(c)[0] in "CZ") else c for c in head)
    if cut:
        out += f"… ({len(text):,} characters)"
    return out


def _short_repr(value: Any, limit: int) -> str:
    """repr() that stops early on big containers (an alias bomb's repr would be gigabytes)."""
    if isinstance(value, (list, tuple, dict, set)):
        parts: list[str] = []
        size = 0
        items = value.items() if isinstance(value, dict) else value
        for item in items:
            s = (f"{_short_repr(item[0], limit)}: {_short_repr(item[1], limit)}" if isinstance(value, dict)
                 else _short_repr(item, limit))
            parts.append(s)
            size += len(s) + 2
            if size > limit:
                parts.append("...")
                break
        o, c = {"list": "[]", "tuple": "()", "dict": "{}", "set": "{}"}[type(value).__name__] \
            if type(value).__name__ in ("list", "tuple", "dict", "set") else "[]"
        return o + ", ".join(parts) + c
    if isinstance(value, str):
        return repr(value[: limit + 1])
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * LIMITS.int_digits:
        return f"<an integer of about {int(value.bit_length() * 0.30103):,} digits>"
    return repr(value)


def got(value: Any) -> str:
    """How an error message quotes a value it refuses: repr-like, escaped and truncated."""
    if isinstance(value, str):
        return "'" + show(value) + "'"
    return show(_short_repr(value, LIMITS.show_chars))


# --- paths


def _fail(path: Any, msg: str) -> ReadError:
    return ReadError(f"{show(str(path))}: {msg}")


def safe_path(path: Union[str, Path], *, want: str = "file", what: str = "file") -> Path:
    """``path`` checked before reading: it exists, holds no symlink loop, is a regular file
    (``want="file"``), a folder (``"dir"``) or either (``"any"``), and is not a special file."""
    p = Path(path)
    if str(path) == "":
        raise ReadError(f"an empty path was given where a {what} was expected")
    if str(path) in STDIN and want != "dir":
        return p
    if "\x00" in str(path):
        raise _fail(path, "a path cannot contain a NUL character")
    try:
        real = Path(os.path.realpath(p, strict=True))
    except FileNotFoundError:
        if p.is_symlink():
            raise _fail(path, f"a broken symbolic link (expected a {what})") from None
        raise _fail(path, f"no such {what}") from None
    except (RuntimeError, OSError) as exc:
        errno = getattr(exc, "errno", None)
        if errno == 40 or isinstance(exc, RuntimeError) or "loop" in str(exc).lower():
            raise _fail(path, f"a symbolic link loop (expected a {what})") from None
        raise _fail(path, f"cannot be opened ({getattr(exc, 'strerror', None) or exc})") from None
    if any(str(real) == r or str(real).startswith(r + "/") for r in SPECIAL_ROOTS):
        raise _fail(path, f"a special system file ({real}), expected a {what}")
    try:
        st = os.stat(real)
    except (OSError, ValueError) as exc:
        raise _fail(path, f"cannot be opened ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        if want in ("dir", "any"):
            return p
        raise _fail(path, f"is a directory, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "a device" if
                (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) else "a special file")
        raise _fail(path, f"is {kind}, expected a {what}")
    if want == "dir":
        raise _fail(path, f"is a file, expected a directory")
    return p


def read_bytes(path: Union[str, Path], *, kind: str = "structured", what: str = "file") -> bytes:
    """The bytes of a regular file, at most the limit for its ``kind`` (structured, log, data)."""
    limit = getattr(LIMITS, KIND_BYTES[kind])
    if str(path) in STDIN:  # read from a pipe the user gave, up to the same limit
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise _fail(path, f"larger than {limit // MiB} MiB, the limit for a {what}")
        return data
    p = safe_path(path, what=what)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise _fail(path, f"cannot be opened ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _fail(path, f"is not a regular file, expected a {what}")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(8 * MiB, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _fail(path, f"larger than {limit // MiB} MiB, the limit for a {what}")
        return b"".join(chunks)
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def decode(data: bytes, origin: str) -> str:
    """UTF-8 text (a BOM is dropped); binary data and bad bytes are refused with their line."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReadError(f"{show(origin)}: UTF-16 text, expected UTF-8; save the file as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ReadError(f"{show(origin)}:{line}: a binary file (NUL byte), expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReadError(f"{show(origin)}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start}); save the file as UTF-8") from None


def read_text(path: Union[str, Path], *, kind: str = "structured", what: str = "file",
              origin: Optional[str] = None) -> str:
    return decode(read_bytes(path, kind=kind, what=what), origin or str(path))


# --- output


def check_output(path: Union[str, Path], option: str = "-o", inputs: Iterable = ()) -> Path:
    """Refuse an output path that cannot be written, before any work starts: a folder, a
    special file, a parent that is a file, a system folder, a folder without write access, or
    one of the command's ``inputs`` (under any name: links and relative paths resolved), which
    writing would replace."""
    text = str(path)
    if text == "" or "\x00" in text:
        raise OutputError(f"{option} {got(text)}: not a usable file name")
    try:
        p = _check_output(Path(path), f"{option} {show(text)}")
    except OSError as exc:
        raise OutputError(f"{option} {show(text)}: cannot be written ({exc.strerror or exc})") from None
    _not_an_input(p, option, text, inputs)
    return p


def _not_an_input(p: Path, option: str, text: str, inputs: Iterable) -> None:
    target = os.path.realpath(p)
    for i in inputs:
        if i in (None, "", "-") or str(i) in STDIN:
            continue
        src = os.path.realpath(str(i))
        same = src == target
        if not same and os.path.exists(target) and os.path.exists(src):
            with contextlib.suppress(OSError):
                same = os.path.samefile(src, target)  # a hard link is the same file too
        if same:
            raise OutputError(f"{option} {show(text)}: is also an input ({show(str(i))}); writing the result "
                              f"there would replace it. Choose another output file")


def _check_output(p: Path, where: str) -> Path:
    if any(len(part.encode("utf-8", "surrogatepass")) > 200 for part in p.parts):
        raise OutputError(f"{where}: a file or folder name is too long (at most 200 bytes)")
    if p.name in ("", ".", "..") or str(p).endswith("/"):
        raise OutputError(f"{where}: names a folder, expected a file name")
    absolute = Path.cwd() / p  # not os.path.abspath: 'file/..' must reach 'file' as the kernel does
    try:
        resolved = Path(os.path.realpath(absolute))
    except (OSError, RuntimeError):
        raise OutputError(f"{where}: a symbolic link loop") from None
    if any(str(resolved) == r or str(resolved).startswith(r + "/") for r in SPECIAL_ROOTS):
        raise OutputError(f"{where}: cannot write under {resolved.parts[1] and '/' + resolved.parts[1]}, "
                          f"a system folder")
    if p.is_symlink() and not p.exists():
        raise OutputError(f"{where}: a broken or looping symbolic link")
    if p.exists():
        try:
            st = os.stat(p)
        except OSError as exc:
            raise OutputError(f"{where}: cannot be written ({exc.strerror or exc})") from None
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{where}: is a folder, expected a file name")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{where}: is a special file, expected a regular file")
    parent = absolute.parent
    while not parent.exists():
        if parent.name == "..":  # mkdir would create the folder that '..' leaves, and the name may be the file's
            raise OutputError(f"{where}: '..' follows a folder that does not exist")
        if parent.is_symlink():
            raise OutputError(f"{where}: {show(str(parent))} is a broken symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{where}: {show(str(parent))} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: the folder {show(str(parent))} is not writable")
    return p


def check_named_file(value: Optional[str], field: str, origin: Union[str, Path], option: str) -> None:
    """A file named inside an input file (a plan's ``evaluation.retention_data``) must lie in that
    file's folder: a plan handed over by someone else must not make tlexpert read (and quote in an
    error) any file the user can read. Files named on the command line (``option``) are the user's own."""
    if not value:
        return
    folder = os.path.realpath(os.path.dirname(os.path.abspath(str(origin))))
    target = os.path.realpath(str(value))
    if not (target == folder or target.startswith(folder.rstrip("/") + "/")):
        raise ReadError(f"The '{field}' field of {show(str(origin))} names {show(str(value))}, outside the folder "
                        f"of {show(str(origin))}. Expected a file in that folder; a file elsewhere can be given "
                        f"with {option}")


RESULT_FILES = ("run.json", "report.md")


def check_output_dir(path: Union[str, Path], option: str = "--out", force: bool = False) -> Path:
    """Like ``check_output`` for a folder that will hold results (it may exist, but one that holds
    an earlier run's results is refused unless ``force``: they would be replaced)."""
    p = Path(path)
    try:
        if p.exists() and not p.is_dir():
            raise OutputError(f"{option} {show(str(path))}: is a file, expected a folder")
        if p.is_dir():
            if not os.access(p, os.W_OK | os.X_OK):
                raise OutputError(f"{option} {show(str(path))}: the folder is not writable")
            held = [f for f in RESULT_FILES if (p / f).exists() or (p / f).is_symlink()]
            if held and not force:
                raise OutputError(f"{option} {show(str(path))}: already holds a run's results ({', '.join(held)}); "
                                  f"choose a new folder, or --force to replace them")
            return p
    except (OSError, ValueError) as exc:
        raise OutputError(f"{option} {show(str(path))}: cannot be written ({exc})") from None
    check_output(p, option)
    return p


@contextlib.contextmanager
def atomic_path(path: Union[str, Path], suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block succeeds and
    removed when it fails. Parent folders are created. ``suffix`` keeps an extension for
    writers that choose their format by it (``.png``, ``.npy``)."""
    import tempfile  # only writers need it; reading stays light for a fast start

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"{show(str(path))}: cannot be written ({exc.strerror or exc})") from None
    tmp = Path(name)
    try:
        yield tmp
        try:  # a replaced file keeps its permissions (a 0600 result stays 0600)
            mode = stat.S_IMODE(os.stat(path).st_mode) if path.is_file() else None
        except OSError:
            mode = None
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)  # replaces a link itself: never writes through it
    except OSError as exc:
        raise OutputError(f"{show(str(path))}: cannot be written ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                tmp.unlink()


def write_atomic(path: Union[str, Path], data: Union[bytes, str]) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` via a temporary file and a rename: never half-written."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())


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
            if size - unique > LIMITS.alias_nodes:
                line = node.start_mark.line + 1
                raise ReadError(f"{show(origin)}:{line}: YAML aliases expand to more than "
                                f"{LIMITS.alias_nodes:,} extra values (an alias bomb?); write the values out")
            continue
        if nid in seen:
            continue
        if nid in on_path:
            raise ReadError(f"{show(origin)}:{node.start_mark.line + 1}: a YAML alias refers to itself "
                            f"(a recursive structure)")
        if depth > LIMITS.depth:
            raise ReadError(f"{show(origin)}:{node.start_mark.line + 1}: nested more than {LIMITS.depth} "
                            f"levels deep")
        unique += 1
        if isinstance(node, yaml.ScalarNode):
            line = node.start_mark.line + 1
            if len(node.value) > LIMITS.string_chars:
                raise ReadError(f"{show(origin)}:{line}: a value of {len(node.value):,} characters; at most "
                                f"{LIMITS.string_chars:,} are accepted")
            if node.tag == _INT_TAG and len(node.value) > LIMITS.int_digits:
                raise ReadError(f"{show(origin)}:{line}: an integer of {len(node.value):,} digits; at most "
                                f"{LIMITS.int_digits} are accepted")
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
    if len(text) > LIMITS.structured_bytes:
        raise ReadError(f"{show(origin)}: larger than {LIMITS.structured_bytes // MiB} MiB")
    if json_syntax:  # YAML would accept some broken JSON (e.g. a missing value)
        parse_json(text, origin)
    import yaml

    loader = _line_loader()(text)
    loader._origin = origin
    try:
        node = loader.get_single_node()
        # without aliases, values longer than the limit or long digit runs, no limit can be exceeded
        if "*" in text or len(text) > LIMITS.string_chars or re.search(
                "[0-9_]{%d}" % (LIMITS.int_digits + 1), text):
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


# --- JSON


def _parse_int(s: str) -> int:
    if len(s) > LIMITS.int_digits:
        raise ReadError(f"an integer of {len(s):,} digits; at most {LIMITS.int_digits} are accepted")
    return int(s)


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ReadError(f"duplicate key {got(k)}; each key may appear once")
        out[k] = v
    return out


def parse_json(text: str, origin: str, *, line: Optional[int] = None) -> Any:
    """Parse JSON text with bounded integers and nesting; duplicate keys are refused."""
    where = f"{show(origin)}:{line}" if line else show(origin)
    try:
        return json.loads(text, parse_int=_parse_int, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        if line:
            raise ReadError(f"{show(origin)}:{line}: malformed JSON line ({exc.msg})") from None
        raise ReadError(f"{show(origin)}:{exc.lineno}: malformed or truncated JSON ({exc.msg})") from None
    except ReadError as exc:
        raise ReadError(f"{where}: {exc}") from None
    except RecursionError:
        raise ReadError(f"{where}: JSON nested too deeply") from None


def read_json(path: Union[str, Path], *, kind: str = "log", what: str = "JSON file",
              expect: Optional[type] = None) -> Any:
    """A JSON file; with ``expect`` (dict or list) the top level must be of that type."""
    data = parse_json(read_text(path, kind=kind, what=what), str(path))
    if expect is not None and not isinstance(data, expect):
        raise ReadError(f"{show(str(path))}: the top level must be a {_type_name(expect)}. "
                        f"Got {_type_name(type(data))} instead.")
    return data


def read_jsonl(path: Union[str, Path], *, kind: str = "log", what: str = "JSONL file",
               row_type: Optional[type] = dict, tolerate_cut_last: bool = False,
               text: Optional[str] = None) -> list[tuple[int, Any]]:
    """(line number, value) for every non-blank line; each value must be a ``row_type``.

    ``tolerate_cut_last`` skips a malformed last line (a record a crash cut short)."""
    if text is None:
        text = read_text(path, kind=kind, what=what)
    lines = text.splitlines()
    last = max((i for i, s in enumerate(lines, 1) if s.strip()), default=0)
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > LIMITS.string_chars:
            raise ReadError(f"{show(str(path))}:{i}: a line of {len(line):,} characters; at most "
                            f"{LIMITS.string_chars:,} are accepted")
        try:
            value = parse_json(line, str(path), line=i)
        except ReadError:
            if tolerate_cut_last and i == last and i > 1:
                break
            raise
        if row_type is not None and not isinstance(value, row_type):
            raise ReadError(f"{show(str(path))}:{i}: each line must be a JSON {_type_name(row_type)}. "
                            f"Got {_type_name(type(value))} ({got(value)}) instead.")
        out.append((i, value))
    return out


def _type_name(t: type) -> str:
    return {dict: "object (mapping)", list: "list", str: "string", int: "integer", float: "number",
            bool: "boolean", type(None): "null"}.get(t, t.__name__)


# --- CSV


@contextlib.contextmanager
def csv_field_limit():
    """csv's field size limit set to ``LIMITS.string_chars`` (csv's own is 128 KB) for the block."""
    old = csv.field_size_limit()
    csv.field_size_limit(LIMITS.string_chars)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def parse_csv(text: str, origin: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(line, row)]) of CSV text: field sizes bounded, header names unique and present."""
    with csv_field_limit():
        return _parse_csv(text, origin)


def _parse_csv(text: str, origin: str) -> tuple[list[str], list[tuple[int, dict]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return [], []
        header = [h.strip() for h in header]
        seen: dict[str, int] = {}
        for j, h in enumerate(header, 1):
            if h in seen and h:
                raise ReadError(f"{show(origin)}:1: the column {got(h)} appears twice (columns {seen[h]} "
                                f"and {j}); each column name may appear once")
            seen[h] = j
        rows = []
        for fields in reader:
            line = reader.line_num
            if not fields or all(f == "" for f in fields) and len(fields) <= 1:
                continue
            row = {h: (fields[j] if j < len(fields) else None) for j, h in enumerate(header) if h}
            if len(fields) > len(header) and any(f.strip() for f in fields[len(header):]):
                raise ReadError(f"{show(origin)}:{line}: {len(fields)} values for {len(header)} columns")
            rows.append((line, row))
        return header, rows
    except csv.Error as exc:
        msg = str(exc)
        if "field larger" in msg:
            msg = f"a field over {LIMITS.string_chars:,} characters (the limit for one value)"
        # reader.line_num counts the lines read before the one that failed
        raise ReadError(f"{show(origin)}:{reader.line_num + 1}: malformed CSV ({msg})") from None


def read_csv(path: Union[str, Path], *, kind: str = "log", what: str = "CSV file"
             ) -> tuple[list[str], list[tuple[int, dict]]]:
    return parse_csv(read_text(path, kind=kind, what=what), str(path))


# --- folders


def walk_files(root: Union[str, Path], name: str) -> list[Path]:
    """Files called ``name`` under ``root``, searched breadth-first, at most ``walk_depth`` levels and
    ``walk_entries`` entries deep, without following symbolic links to folders."""
    root = Path(root)
    found, seen = [], 0
    level = [root]
    for _ in range(LIMITS.walk_depth + 1):
        nxt = []
        for d in level:
            try:
                with os.scandir(d) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                seen += 1
                if seen > LIMITS.walk_entries:
                    raise ReadError(f"{show(str(root))}: more than {LIMITS.walk_entries:,} entries searched for "
                                    f"{name}; name the file itself")
                try:
                    if e.is_dir(follow_symlinks=False):
                        nxt.append(Path(e.path))
                    elif e.name == name and e.is_file():
                        found.append(Path(e.path))
                except OSError:
                    continue
        level = nxt
    return sorted(found)


# --- values


def expect_type(value: Any, types, where: str, field: str, expected: str) -> Any:
    """``value`` if it is one of ``types``; otherwise one error in the project's message shape."""
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        raise ReadError(f"The '{field}' field of {show(where)} must be {expected}. Got {got(value)} instead.")
    return value


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(v):
    """A cell for a CSV file a person may open in a spreadsheet: text that starts like a formula
    (=, +, -, @, tab, carriage return) gets a leading apostrophe so that it is shown, not evaluated
    (OWASP's advice on CSV injection). Numbers, and text that reads as a number, are left as they are."""
    if not isinstance(v, str) or not v.startswith(_FORMULA_START):
        return v
    try:
        float(v)
        return v
    except ValueError:
        return "'" + v
