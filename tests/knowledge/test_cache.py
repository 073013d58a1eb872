"""The cache is never a way to run code: planted pickles are not loaded, folders are private."""

import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge import cache
from knowledge.loader import KnowledgeBase, _disk_key

ROOT = Path(__file__).resolve().parents[2]


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch \"$PLANTED_MARK\"",))


def _consult(env):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "consult", "--task", "text_classification",
                           "--dataset-size", "2000", "--no-input", "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_planted_pickle_in_shared_cache_is_not_loaded(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # a shared cache folder, as /tmp is
    mark = tmp_path / "ran"
    key = _disk_key([])
    planted = pickle.dumps(_Boom())
    for name in (f"kb-{key}.pickle", f"symptom-index-{key}.pickle"):
        (shared / name).write_bytes(planted)
    env = {**os.environ, "TLEXPERT_CACHE_DIR": str(shared), "PLANTED_MARK": str(mark)}
    # the folder is ours here (the test runs as its owner), so it is tightened and the planted,
    # unsigned files are rebuilt, not loaded
    r = _consult(env)
    assert r.returncode == 0, r.stderr
    assert not mark.exists()
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o700
    blob = (shared / f"kb-{key}.pickle").read_bytes()
    assert blob != planted and planted not in blob  # replaced by the signed entry
    assert stat.S_IMODE(os.stat(shared / f"kb-{key}.pickle").st_mode) == 0o600


def test_signed_entry_with_forged_body_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", str(tmp_path / "c"))
    built = []

    def build():
        built.append(1)
        return KnowledgeBase.__new__(KnowledgeBase)

    cache.pickle_cached("kb", "k1", build, KnowledgeBase)
    cache.pickle_cached("kb", "k1", build, KnowledgeBase)
    assert len(built) == 1  # the second call read the signed entry
    f = tmp_path / "c" / "kb-k1.pickle"
    blob = f.read_bytes()
    f.write_bytes(blob[:32] + pickle.dumps(_Boom()))  # keep the old tag, swap the body
    monkeypatch.setenv("PLANTED_MARK", str(tmp_path / "ran"))
    cache.pickle_cached("kb", "k1", build, KnowledgeBase)
    assert len(built) == 2 and not (tmp_path / "ran").exists()


def test_folder_of_another_user_disables_the_cache(tmp_path, monkeypatch, capsys):
    d = tmp_path / "theirs"
    d.mkdir()
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", str(d))
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(d).st_uid + 1)
    assert cache.cache_dir() is None
    assert "belongs to another user" in capsys.readouterr().err
    assert cache.pickle_cached("kb", "k", lambda: 5, int) == 5
    assert list(d.iterdir()) == []


def test_created_private_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", str(tmp_path / "new"))
    old = os.umask(0)
    try:
        d = cache.cache_dir("embeddings")
        cache.save_array(d / "x.npy", __import__("numpy").zeros(3))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d / "x.npy").st_mode) == 0o600


def test_relative_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", "rel/cache")
    with pytest.raises(cache.CacheError, match="absolute"):
        cache.cache_root()
    monkeypatch.delenv("TLEXPERT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "rel")  # ignored, as the XDG spec says
    assert cache.cache_root() == Path(os.path.expanduser("~")) / ".cache" / "tlexpert"


def test_relative_cache_dir_is_a_clear_error(tmp_path):
    r = _consult({**os.environ, "TLEXPERT_CACHE_DIR": "relative"})
    assert r.returncode == 2
    assert "TLEXPERT_CACHE_DIR" in r.stderr and "Traceback" not in r.stderr


def test_array_cache_never_unpickles(tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", str(tmp_path / "c"))
    f = cache.entry("embeddings", "a.npy")
    np.save(f, np.array([_Boom()], dtype=object), allow_pickle=True)
    os.chmod(f, 0o600)
    monkeypatch.setenv("PLANTED_MARK", str(tmp_path / "ran"))
    assert cache.load_array(f) is None
    assert not (tmp_path / "ran").exists()
