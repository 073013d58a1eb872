"""One output policy and one atomic writer for everything tlexpert writes.

Output paths are checked before any work starts (``check_output``, ``check_output_dir``): a folder,
a special file, a system folder, a folder without write access, or one of the command's inputs
(under any name) is refused. Results are written through one writer, ``write_atomic`` /
``atomic_path``: a temporary file in the same folder, then a rename, so a result is either the old
one or the whole new one, never half-written; a replaced file keeps its permissions, and nothing is
written through a symlink that points elsewhere. ``spreadsheet_safe`` neutralises cells that a
spreadsheet would evaluate as formulas.

Standard library only: this module loads on every command.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from knowledge.errors import KnowledgeError
from knowledge.reading import SPECIAL_ROOTS, STDIN, ReadError, got, show

class OutputError(KnowledgeError):
    """An output path cannot be written."""


# --- output


def check_suffix(path: Union[str, Path], what: str, suffixes: Iterable[str]) -> Path:
    """Refuse a file whose extension is not one of ``suffixes`` (the format is chosen by it)."""
    p, suffixes = Path(path), list(suffixes)
    if p.suffix.lower() not in suffixes:
        shown = ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else suffixes[0]
        raise OutputError(f"The {what} {path} must end in {shown}. Got {p.suffix or 'no extension'!r} instead.")
    return p


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
    error) any file the user can read. Files named on the command line (``option``) are the user's own.
    A comma-separated list (a causal LM's several retention files) is checked file by file."""
    if not value:
        return
    folder = os.path.realpath(os.path.dirname(os.path.abspath(str(origin))))
    for name in filter(None, (n.strip() for n in str(value).split(","))):
        target = os.path.realpath(name)
        if not (target == folder or target.startswith(folder.rstrip("/") + "/")):
            raise ReadError(f"The '{field}' field of {show(str(origin))} names {show(name)}, outside the folder "
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
    except OutputError:
        raise
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
