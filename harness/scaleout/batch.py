"""Batch files and scheduling: many scenario files -> one table (the rows come from
``rules.conformance``, which consults each scenario and checks its ``expect:`` block).

Input files: YAML (a list, or ``scenarios:`` with shared ``defaults:``), JSON
(the same shapes), JSONL (one scenario per line) and CSV (one per row; list
fields separated by ``;``, ``expect.<check>`` columns for checks). Each
scenario may carry an ``id`` and an ``expect:`` block.

Every input scenario yields exactly one output row; a bad scenario yields an
error row naming file, row and field, and the batch goes on. Rows are
computed in chunks by the worker function the caller passes (the CLI passes
``rules.conformance.consult_chunk``, so that one engine per worker process
serves many scenarios): the same code runs in process, on joblib's local
processes (``--jobs``) or on a Dask cluster (``--scheduler``). This module
reads and writes files and schedules work; it knows nothing of the rules.
"""

from __future__ import annotations

import csv
import os
import json
from pathlib import Path
from typing import Any, Iterable, Optional

from knowledge.schema import KnowledgeError
from knowledge.writing import OutputError
from harness.scaleout.fanout import check_scheduler, fan_out

LIST_FIELDS = ("source_domain", "target_domain", "symptoms")
def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    from knowledge.reading import parse_csv

    rows = []
    _, records = parse_csv(text, str(path))
    for line, r in records:
        item: dict = {}
        for k, v in r.items():
            if k is None or v is None or v.strip() == "":
                continue
            v = v.strip()
            if k.startswith("expect."):
                check = k[len("expect."):]
                item.setdefault("expect", {})[check] = ([x.strip() for x in v.split(";") if x.strip()]
                                                        if check.endswith(("_include", "_exclude")) else _scalar(v))
            elif k in LIST_FIELDS:
                item[k] = [x.strip() for x in v.split(";") if x.strip()]
            else:
                item[k] = _scalar(v) if k != "id" else v
        rows.append((line, item))
    return rows


def _scalar(v: str):
    if len(v) > 64:  # no number is this long (and int() of thousands of digits is refused or slow)
        return v
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def read_scenarios(path: str | Path) -> list[tuple[str, int, Any]]:
    """(file, row number, raw scenario or an Exception) for every scenario of one file."""
    from knowledge.loader import LineDict, read_yaml
    from knowledge.reading import read_text

    path = Path(path)
    name = str(path)
    suffix = path.suffix.lower()
    text = read_text(path, kind="structured", what="scenario file")
    if not text.strip():
        raise KnowledgeError(f"{name}: an empty file, expected scenarios")
    if suffix == ".csv":
        rows = _csv_rows(path, text)
        if not rows:
            raise KnowledgeError(f"{name}: a header and no rows, expected one scenario per row")
        return [(name, line, r) for line, r in rows]
    if suffix in (".jsonl", ".ndjson"):
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append((name, i, read_yaml(path, text=line, origin=f"{name}:{i}")))
            except KnowledgeError as exc:
                out.append((name, i, exc))
        return out
    data = read_yaml(path, text=text)
    defaults: dict = {}
    if isinstance(data, dict) and "scenarios" in data:
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise KnowledgeError(f"The 'defaults' field of {name} must be a mapping of scenario fields. "
                                 f"Got {type(defaults).__name__} instead.")
        data = data["scenarios"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise KnowledgeError(f"{name}: a scenario file must hold a list of scenarios or 'scenarios:'. "
                             f"Got {type(data).__name__} instead.")
    if not data:
        raise KnowledgeError(f"{name}: an empty list of scenarios, expected at least one")
    out = []
    for i, item in enumerate(data, 1):
        line = getattr(item, "line", i)
        if isinstance(item, dict) and defaults:
            merged = LineDict({**defaults, **item})
            merged.origin, merged.line = getattr(item, "origin", name), getattr(item, "line", 0)
            merged.lines = {**getattr(defaults, "lines", {}), **getattr(item, "lines", {})}
            if isinstance(defaults.get("expect"), dict) and isinstance(item.get("expect"), dict):
                merged["expect"] = {**defaults["expect"], **item["expect"]}
            item = merged
        out.append((name, line, item))
    return out


# --- writing tables (stdlib and pyarrow; no pandas on this path)


def _cell(v):
    return "" if v is None else v


def to_markdown(rows: list[dict], columns: list[str]) -> str:
    from knowledge.reading import show

    def esc(v):  # control and right-to-left characters escaped (ids and names are user text)
        return show(str(_cell(v)).replace("\n", " "), 1_000_000).replace("|", "\\|")

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(esc(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_table(rows: list[dict], path: Path, columns: list[str]) -> None:
    """CSV, JSON, JSONL, Parquet or Markdown by extension, written atomically."""
    from knowledge.writing import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise KnowledgeError(f"{path}: unknown output format {suffix!r} "
                             f"(use .csv, .json, .jsonl, .parquet or .md)")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {c: [r.get(c) for r in rows] for c in columns}
            for c in ("dataset_size", "row", "checks", "checks_failed", "lora_rank"):  # an error row may hold text
                cols[c] = pa.array([v if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2 ** 63
                                    else None for v in cols[c]], type=pa.int64())
            for c in ("latency_ms", "learning_rate"):
                cols[c] = pa.array([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                                    for v in cols[c]], type=pa.float64())
            for c in columns:
                if not isinstance(cols[c], pa.Array):
                    cols[c] = pa.array([None if v is None else str(v) for v in cols[c]], type=pa.string())
            pq.write_table(pa.table(cols), tmp)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                if suffix == ".csv":
                    from knowledge.writing import spreadsheet_safe

                    w = csv.DictWriter(fh, fieldnames=columns)
                    w.writeheader()
                    w.writerows({c: spreadsheet_safe(_cell(r.get(c))) for c in columns} for r in rows)
                elif suffix == ".json":
                    json.dump(rows, fh, indent=1, default=str)
                elif suffix == ".jsonl":
                    for r in rows:
                        fh.write(json.dumps(r, default=str) + "\n")
                else:
                    fh.write(to_markdown(rows, columns))


OUTPUT_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet", ".md", ".markdown")


# --- the batch


class Journal:
    """Rows finished so far, appended as JSON lines beside the output (for --resume)."""

    def __init__(self, out: Optional[Path], columns: Iterable[str] = ("id", "file", "row", "status")):
        """``columns``: what every journaled row must hold to be taken back (the table's columns)."""
        self.path = out.with_name(f".{out.name}.partial.jsonl") if out else None
        self.columns = tuple(columns)
        self.fh = None
        self.keys: dict = {}  # (file, row) -> the content key of the scenario consulted there

    @staticmethod
    def content_key(scenario, knowledge: str) -> str:
        """What a finished row depends on: the scenario as read and the knowledge it was consulted with
        (an edited row, or a changed knowledge base or overlay, is consulted again on --resume)."""
        import hashlib

        blob = json.dumps(scenario if isinstance(scenario, dict) else repr(scenario), sort_keys=True, default=str)
        return hashlib.sha256(f"{knowledge}|{blob}".encode()).hexdigest()[:24]

    def still_valid(self, done: dict, items: list) -> set:
        """(file, row) of the finished rows whose scenario and knowledge are unchanged."""
        return {(f, r) for f, r, _ in items if (f, r) in done and done[(f, r)].get("_key") == self.keys.get((f, r))}

    def done(self) -> dict:
        """Rows finished by an earlier run; a damaged line (cut short by a kill, or edited) is
        left out, so its scenario is consulted again."""
        from knowledge.reading import parse_json, read_text

        rows: dict = {}
        if not (self.path and (self.path.exists() or self.path.is_symlink())):
            return rows
        try:
            text = read_text(self.path, kind="log", what="batch journal")
        except KnowledgeError:
            return rows  # unreadable as a whole (binary, too big, not a file): every row is consulted again
        for i, line in enumerate(text.splitlines(), 1):
            try:
                r = parse_json(line, str(self.path), line=i)
            except KnowledgeError:
                continue
            if (isinstance(r, dict) and set(self.columns) <= set(r) and isinstance(r["file"], str)
                    and isinstance(r["row"], int) and not isinstance(r["row"], bool)
                    and r["status"] in ("ok", "error")):
                rows[(r["file"], r["row"])] = r
        return rows

    def add(self, rows: Iterable[dict]) -> None:
        if not self.path:
            return
        try:
            if self.fh is None:  # never through a link planted where the journal goes
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
                self.fh = os.fdopen(fd, "a", encoding="utf-8")
            for r in rows:
                key = self.keys.get((r.get("file"), r.get("row")))
                self.fh.write(json.dumps({**r, "_key": key} if key else r, default=str) + "\n")
            self.fh.flush()
        except OSError as exc:
            from knowledge.writing import OutputError

            raise OutputError(f"{self.path}: cannot write the batch journal ({exc.strerror or exc})") from None

    def close(self, remove: bool) -> None:
        if self.fh:
            self.fh.close()
        if remove and self.path and self.path.exists():
            self.path.unlink()


def run_batch(items: list, work, *, jobs: int = 1, scheduler: Optional[str] = None, chunk_size: int = 250,
              knowledge_dirs: tuple = (), journal: Optional[Journal] = None, bar=None) -> list[dict]:
    """Rows for ``items`` in input order, in process, on local processes or on a Dask cluster.

    ``work(chunk, knowledge_dirs) -> rows``: a module-level function (it is pickled to workers)."""
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    results: list = [None] * len(chunks)

    def collect(i, rows):
        results[i] = rows
        if journal:
            journal.add(rows)
        if bar is not None:
            bar.update(len(rows))

    fan_out(work, [(ch, knowledge_dirs) for ch in chunks], jobs=jobs, scheduler=scheduler, on_result=collect)
    return [r for rows in results for r in rows]


SCENARIO_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".ndjson", ".csv")


def scenario_files(paths) -> list[str]:
    """The files named, a folder standing for the scenario files directly in it (sorted by name)."""
    out = []
    for p in map(str, paths):
        if os.path.isdir(p):
            found = sorted(str(f) for f in Path(p).iterdir()
                           if f.suffix.lower() in SCENARIO_SUFFIXES and f.is_file() and not f.name.startswith("."))
            if not found:
                raise KnowledgeError(f"{p}: a folder without scenario files ({', '.join(SCENARIO_SUFFIXES)})")
            out += found
        else:
            out.append(p)
    return out


def output_lock(out: Optional[Path]):
    """An exclusive lock on ``-o`` for the whole run (a second batch writing the same table would
    delete the first's journal and replace its table): held by an open file, released at exit."""
    if out is None:
        return None
    import fcntl

    lock_path = out.with_name(f".{out.name}.lock")
    for _ in range(10):
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            raise OutputError(f"-o {out}: cannot create its lock file {lock_path} ({exc.strerror or exc})") from None
        fh = os.fdopen(fd, "r+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise OutputError(f"-o {out}: another tlexpert batch is writing this table (its lock {lock_path} is "
                             f"held); wait for it to finish, or choose another output") from None
        try:  # the holder before us may have removed the file as it finished: lock the one at the path
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        fh.close()
    else:
        raise OutputError(f"-o {out}: its lock file {lock_path} keeps changing; is another batch starting?")

    class Lock:
        def close(self):
            if not fh.closed:
                try:
                    os.unlink(lock_path)  # while still held: the next batch then locks a new file
                except OSError:
                    pass
                fh.close()

    return Lock()


def consult_files(paths, out: Optional[Path], work, columns: list, *, jobs: int = 1, scheduler: Optional[str] = None,
                  resume: bool = False, chunk_size: int = 250, knowledge_dirs: tuple = (), on_close=None,
                  quiet: bool = True) -> list[dict]:
    """Every scenario of ``paths`` (files, or folders of them) through ``work`` (chunks of
    ``(file, row, scenario)`` -> rows), in the files' order: an unreadable file is one error row; with
    ``resume``, rows an interrupted run of the same ``out`` finished (for unchanged scenarios and
    knowledge) are kept; the table is written to ``out`` when given. ``on_close`` registers the output
    lock's release (the command's end)."""
    from knowledge.loader import _disk_key

    if scheduler is not None:
        check_scheduler(scheduler)
    items = []
    for f in scenario_files(paths):  # a folder stands for the scenario files in it
        try:
            items.extend(read_scenarios(f))
        except KnowledgeError as exc:  # the whole file is unreadable: one error row for it
            items.append((f, 0, exc))
    lock = output_lock(out)
    if lock is not None and on_close is not None:
        on_close(lock.close)  # released however the command ends
    journal = Journal(out, columns)
    knowledge = _disk_key(list(knowledge_dirs)) or ""
    journal.keys = {(f, r): Journal.content_key(s, knowledge) for f, r, s in items}
    done = journal.done() if resume else {}
    if not resume:
        journal.close(remove=True)
    valid = journal.still_valid(done, items)
    done = {k: v for k, v in done.items() if k in valid}
    todo = [it for it in items if (it[0], it[1]) not in done]
    bar = None
    if not quiet:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="scenarios", unit="sc",
                   file=sys.stderr, leave=False)
    try:
        new_rows = run_batch(todo, work, jobs=jobs, scheduler=scheduler, chunk_size=chunk_size,
                             knowledge_dirs=knowledge_dirs, journal=journal if out else None, bar=bar)
    except OSError as exc:
        raise KnowledgeError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None
    finally:
        if bar is not None:
            bar.close()
    fresh = {(r["file"], r["row"]): r for r in new_rows}
    rows = [fresh.get((f, r)) or {k: v for k, v in done[(f, r)].items() if k != "_key"} for f, r, _ in items]
    if out is not None:
        write_table(rows, out, columns)
        journal.close(remove=True)
    return rows
