"""The one cache directory, and the only way anything is read back from it.

Where: ``$TLEXPERT_CACHE_DIR`` if set (it must be an absolute path: a relative
one is refused with a clear error), else ``$XDG_CACHE_HOME/tlexpert`` when
``XDG_CACHE_HOME`` is absolute (a relative value is ignored, as the XDG base
directory specification says), else ``~/.cache/tlexpert``. Each kind of entry
has a sub-folder (``cache_dir("embeddings")``).

Trust: a cache is only worth something if nobody else can write into it. The
directory is created ``0700`` whatever the umask; before anything is read from
it or written to it, the directory and each of its sub-folders must be owned by
the user running tlexpert and writable by nobody else (one we own with looser
bits is tightened to ``0700``; one owned by someone else disables the cache,
with one warning on stderr, and every result is computed afresh). Entries are
written ``0600``. Python objects (the validated knowledge base, the symptom
index) are pickled because rebuilding them is most of a cold consultation, so a
pickle is loaded only when the file is ours, not writable by others, and its
HMAC-SHA256, keyed by a per-user secret kept ``0600`` in the cache directory,
matches: a pickle planted by anyone who cannot read that secret is never
unpickled, it is rebuilt. Arrays are stored as ``.npy`` and read with
``allow_pickle=False``. A missing, stale, damaged or refused entry is never an
error, only lost time.

Standard library only: this module loads on every command.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from knowledge.errors import KnowledgeError

ENV = "TLEXPERT_CACHE_DIR"
_SECRET = "secret.key"
_TAG = 32  # bytes of HMAC-SHA256 before the pickle
_warned: set[str] = set()


class CacheError(KnowledgeError):
    """The cache location is misconfigured (a relative ``TLEXPERT_CACHE_DIR``)."""


def cache_root() -> Path:
    """The cache directory (not created)."""
    env = os.environ.get(ENV)
    if env:
        if not os.path.isabs(env):
            raise CacheError(f"{ENV}={env!r}: expected an absolute path (a relative cache folder "
                             "would depend on the folder tlexpert is started from)")
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tlexpert"


def _warn(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        print(f"Warning: {msg}; the cache is not used", file=sys.stderr)


def _secure_dir(d: Path) -> bool:
    """Create ``d`` 0700 if missing; True when it is ours and writable by nobody else."""
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(d)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        _warn(f"cache folder {d} is not a folder")
        return False
    if st.st_uid != os.geteuid():
        _warn(f"cache folder {d} belongs to another user (uid {st.st_uid})")
        return False
    if st.st_mode & 0o077:
        try:
            os.chmod(d, 0o700)
        except OSError:
            _warn(f"cache folder {d} is open to other users and cannot be restricted")
            return False
    return True


def cache_dir(kind: str = "") -> Optional[Path]:
    """The folder for one kind of entry, created 0700 and checked; None when it cannot be trusted."""
    root = cache_root()
    if not _secure_dir(root):
        return None
    if not kind:
        return root
    d = root / kind
    return d if _secure_dir(d) else None


def _owned_file(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _secret(root: Path) -> Optional[bytes]:
    f = root / _SECRET
    if _owned_file(f) and not os.lstat(f).st_mode & 0o077:
        try:
            data = f.read_bytes()
            if len(data) >= 32:
                return data
        except OSError:
            return None
    try:
        write_entry(f, os.urandom(32))
        return f.read_bytes()
    except OSError:
        return None


def write_entry(path: Path, data: bytes) -> None:
    """Write a cache entry 0600 through a temporary file and a rename (never through a link)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_entry(path: Path) -> Optional[bytes]:
    """The bytes of a cache entry that is ours and writable only by us, else None."""
    if not _owned_file(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def pickle_cached(kind: str, key: Optional[str], build: Callable[[], Any], cls: type) -> Any:
    """``build()``, through a signed pickle ``<kind>-<key>.pickle`` in the cache (key None: no cache)."""
    import pickle

    root = cache_dir() if key else None
    if root is None:
        return build()
    path = root / f"{kind}-{key}.pickle"
    secret = _secret(root)
    if secret is None:
        return build()
    blob = read_entry(path)
    if blob is not None and len(blob) > _TAG:
        tag, body = blob[:_TAG], blob[_TAG:]
        if hmac.compare_digest(tag, hmac.new(secret, body, hashlib.sha256).digest()):
            try:
                obj = pickle.loads(body)
                if isinstance(obj, cls):
                    return obj
            except Exception:  # a damaged entry of our own is rebuilt
                pass
    obj = build()
    try:
        body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        write_entry(path, hmac.new(secret, body, hashlib.sha256).digest() + body)
    except (OSError, pickle.PicklingError):
        pass
    return obj


def load_array(path: Optional[Path]):
    """A cached ``.npy`` array (never unpickled), or None."""
    if path is None or read_entry(path) is None:
        return None
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None


def save_array(path: Optional[Path], arr) -> None:
    """Store an array as ``.npy`` 0600; a cache that cannot be written only costs time."""
    if path is None:
        return
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    try:
        write_entry(path, buf.getvalue())
    except OSError:
        pass


def entry(kind: str, name: str) -> Optional[Path]:
    """The path of one entry of ``kind`` (its folder created and checked), or None."""
    d = cache_dir(kind)
    return None if d is None else d / name
