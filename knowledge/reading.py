"""One reading layer for every file tlexpert takes (YAML in ``knowledge.yamlio``; what tlexpert writes
goes through ``knowledge.writing``).

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
- columns (metrics) of one training log: 10,000. A real run logs tens, a
  per-layer logger a few thousand; past that, memory would grow with rows
  times columns for no metric anyone reads.

Paths are resolved safely: a symlink loop, a folder where a file is expected,
FIFOs, sockets, devices and anything under /proc, /sys or /dev are refused
without being opened for reading (a FIFO is opened non-blocking, so nothing
hangs).

``show(value)`` is how user strings are printed: control and bidirectional
characters escaped, long values truncated.

Standard library only: this module loads on every command.
"""

from __future__ import annotations

import contextlib
import csv
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
from typing import Any, Optional, Union


from knowledge.errors import KnowledgeError


class ReadError(KnowledgeError):
    """An input file (or path) cannot be read as what it should be."""


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
    log_columns: int = 10_000
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
        raise _fail(path, "is a file, expected a directory")
    return p


def open_file(path: Union[str, Path], *, what: str = "file"):
    """``path`` opened for reading in binary, after ``safe_path``: opened non-blocking and checked again
    on the open descriptor, so that a FIFO put in its place in between still cannot make anything wait."""
    p = safe_path(path, what=what)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _fail(path, f"cannot be opened ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _fail(path, f"is not a regular file, expected a {what}")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


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


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_unicode(value: Any) -> None:
    """Refuse a string holding a lone surrogate (a JSON escape like \\ud800 without its pair): it is not
    text, and a tokenizer or a file writer would fail on it later with a traceback."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ReadError(f"a string holds a lone surrogate escape ({show(value, 60)}), which is not "
                            f"valid Unicode text") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_unicode(k)
            _check_unicode(v)
    elif isinstance(value, list):
        for v in value:
            _check_unicode(v)


def parse_json(text: str, origin: str, *, line: Optional[int] = None) -> Any:
    """Parse JSON text with bounded integers and nesting; duplicate keys are refused."""
    where = f"{show(origin)}:{line}" if line else show(origin)
    try:
        data = json.loads(text, parse_int=_parse_int, object_pairs_hook=_no_duplicates)
        if _SURROGATE_ESCAPE.search(text):  # "\ud800" escapes decode to text no encoder can write
            _check_unicode(data)
        return data
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
    start = 1  # the first line of the record being read: where an error is reported
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
        start = reader.line_num + 1
        for fields in reader:
            line, start = reader.line_num, reader.line_num + 1
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
        raise ReadError(f"{show(origin)}:{start}: malformed CSV ({msg})") from None


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


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
