"""Load the knowledge base once: built-in YAML plus a team's own overrides.

``load()`` reads ``knowledge/data/*.yaml`` and then every ``*.yaml``/``*.yml`` in
each extra directory (``--knowledge DIR`` or ``$TLEXPERT_KNOWLEDGE``, several
separated by ``os.pathsep``). An extra entry whose id already exists is merged
field by field over the built-in one (so a team can change one threshold's
value); a new id is added. Everything is validated the same way, and errors
name the file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from knowledge.checks import check_references
from knowledge.schema import (
    Approach,
    Architecture,
    Device,
    Fix,
    KnowledgeError,
    Model,
    PitfallEntry,
    Question,
    Regularizer,
    Source,
    Symptom,
    Distinction,
    Task,
    Technique,
    Threshold,
    UncoveredTask,
    Throughput,
    Vocabulary,
    build,
    choice_error,
    normalize_word,
    nearest,
    where_of,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
ENV_VAR = "TLEXPERT_KNOWLEDGE"

# top-level key in a YAML file -> entry class
SECTIONS: dict[str, type] = {
    "sources": Source,
    "tasks": Task,
    "uncovered_tasks": UncoveredTask,
    "architectures": Architecture,
    "models": Model,
    "devices": Device,
    "questions": Question,
    "approaches": Approach,
    "techniques": Technique,
    "symptoms": Symptom,
    "pitfalls": PitfallEntry,
    "distinctions": Distinction,
    "fixes": Fix,
    "regularization": Regularizer,
    "thresholds": Threshold,
    "throughput": Throughput,
    "vocabulary": Vocabulary,
}


# --- YAML with line numbers: the reading layer (limits, duplicate keys, safe paths)

from knowledge.reading import got, safe_path  # noqa: E402,F401  (re-exported)
from knowledge.yamlio import LineDict, read_yaml  # noqa: E402,F401  (re-exported)


# --- the knowledge base


@dataclass
class KnowledgeBase:
    """All entries by section and id; the registry every lookup goes through."""

    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def section(self, name: str) -> dict[str, Any]:
        return self.sections[name]

    def get(self, section: str, entry_id: str):
        """Look an entry up by id; a miss names the nearest known ids."""
        entries = self.sections[section]
        try:
            return entries[str(getattr(entry_id, "value", entry_id))]
        except KeyError:
            close = nearest(entry_id, entries) or sorted(entries)[:5]
            raise KnowledgeError(
                f"Unknown {section[:-1] if section.endswith('s') else section} id {entry_id!r}. "
                f"Nearest known ids: {', '.join(close)}."
            ) from None

    # convenient views
    @property
    def models(self) -> dict[str, Model]:
        return self.sections["models"]

    @property
    def tasks(self) -> dict[str, Task]:
        return self.sections["tasks"]

    @property
    def techniques(self) -> dict[str, Technique]:
        return self.sections["techniques"]

    @property
    def symptoms(self) -> dict[str, Symptom]:
        return self.sections["symptoms"]

    @property
    def pitfalls(self) -> dict[str, PitfallEntry]:
        return self.sections["pitfalls"]

    @property
    def fixes(self) -> dict[str, Fix]:
        return self.sections["fixes"]

    @property
    def sources(self) -> dict[str, Source]:
        return self.sections["sources"]

    @property
    def devices(self) -> dict[str, Device]:
        return self.sections["devices"]

    def find_task(self, name: str):
        """A task (or an uncovered task) by id or alias, as users write it ('NER', 'named-entity recognition')."""
        key = normalize_word(name)
        for t in [*self.tasks.values(), *self.sections["uncovered_tasks"].values()]:
            if key == t.id or key in (normalize_word(a) for a in t.aliases):
                return t
        return None

    def threshold(self, threshold_id: str) -> Any:
        return self.get("thresholds", threshold_id).value

    def find_model(self, name: str) -> Optional[Model]:
        """A catalog model by id, display name, alias or Hugging Face id (case-insensitive)."""
        key = name.strip().lower()
        for m in self.models.values():
            names = [m.id, m.name, m.hf_id, *m.aliases]
            if key in (n.lower() for n in names if n):
                return m
        return None


def _entries_of(data: Any, origin: str) -> Iterable[tuple[str, Any]]:
    if data is None:
        return
    if not isinstance(data, dict):
        raise KnowledgeError(
            f"{origin}: a knowledge file must be a mapping of sections "
            f"({', '.join(SECTIONS)}). Got {type(data).__name__} instead."
        )
    for section, entries in data.items():
        where = where_of(data, section, origin)
        if section not in SECTIONS:
            raise choice_error("section", where, section, SECTIONS)
        if not isinstance(entries, list):
            raise KnowledgeError(
                f"The '{section}' section of {where} must be a list of entries. "
                f"Got {type(entries).__name__} instead."
            )
        for entry in entries:
            yield section, entry


def _yaml_files(directory: Path) -> list[Path]:
    safe_path(directory, want="any", what="knowledge directory")
    if not directory.is_dir():
        return [directory]
    try:
        names = sorted(directory.iterdir())
    except OSError as exc:
        raise KnowledgeError(f"{directory}: cannot list the knowledge folder ({exc.strerror or exc})") from None
    return [p for p in names if p.suffix in (".yaml", ".yml", ".json")]


def extra_dirs(cli_dirs: Iterable[str] = ()) -> list[Path]:
    """Extra knowledge folders: ``$TLEXPERT_KNOWLEDGE`` first, then ``--knowledge``."""
    env = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    return [Path(p) for p in [*env, *cli_dirs]]


def load(extra: Iterable[Path | str] = ()) -> KnowledgeBase:
    """Read, merge and validate the knowledge base. Raises ``KnowledgeError``."""
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    files = sorted(DATA_DIR.glob("*.yaml"))
    for d in extra:
        files.extend(_yaml_files(Path(d)))
    for path in files:
        origin = path.name if path.parent == DATA_DIR else str(path)
        data = read_yaml(path, origin=origin)
        for section, entry in _entries_of(data, origin):
            where = where_of(entry, None, origin)
            if not isinstance(entry, dict) or "id" not in entry:
                raise KnowledgeError(
                    f"The entry at {where} of section '{section}' must be a mapping with an 'id'. "
                    f"Got {got(entry)} instead."
                )
            key = str(entry["id"])
            if key in raw[section] and path.parent != DATA_DIR:
                merged = LineDict(raw[section][key])
                merged.origin, merged.line = entry.origin, entry.line
                merged.lines = {k: None for k in merged}
                merged.lines.update(entry.lines)
                merged.update(entry)
                entry = merged
            elif key in raw[section]:
                raise KnowledgeError(f"{where}: duplicate {section} id {key!r}")
            raw[section][key] = entry
    kb = KnowledgeBase(files=[str(p) for p in files])
    for section, cls in SECTIONS.items():
        kb.sections[section] = {
            key: build(cls, entry, where_of(entry, None, "knowledge"))
            for key, entry in raw[section].items()
        }
    check_references(kb, raw)
    _derive_speed(kb)
    return kb


def _derive_speed(kb: KnowledgeBase) -> None:
    """Each model's speed class: its estimated latency on the reference device."""
    import dataclasses

    from knowledge.estimates import latency_ms, speed_class
    from knowledge.schema import Speed

    th = kb.sections["thresholds"]
    ref = kb.get("devices", th["speed_reference_device"].value)
    bounds, tokens = th["speed_class_ms"].value, th["sequence_tokens"].value
    for key, m in kb.models.items():
        generative = any(kb.tasks[t].generative for t in m.tasks[:1])
        ms = latency_ms(m, ref, generative=generative, sequence_tokens=tokens)
        kb.models[key] = dataclasses.replace(m, speed=Speed(speed_class(ms, bounds)))


_CACHE: dict[tuple, KnowledgeBase] = {}


def _disk_key(extra) -> Optional[str]:
    """A digest of every file the knowledge base is built from (and the code that validates it)."""
    import hashlib

    try:
        files = sorted(DATA_DIR.glob("*.yaml")) + sorted(Path(__file__).parent.glob("*.py"))
        for d in extra:
            files.extend(_yaml_files(Path(d)))
        h = hashlib.sha256()
        for f in files:
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_mtime_ns}|{st.st_size}\n".encode())
        return h.hexdigest()[:32]
    except (OSError, KnowledgeError):
        return None


def load_cached(extra: Iterable[Path | str] = ()) -> KnowledgeBase:
    """``load``, through a signed pickle of the validated knowledge base keyed by its files
    (``knowledge.cache``: read back only from a folder and file of the user's own).

    Parsing and validating the YAML is most of a cold consultation; the pickle is
    rebuilt whenever any knowledge file (or the loader and schema) changes, and
    any problem with it falls back to ``load``."""
    extra = list(extra)
    key = _disk_key(extra)
    from knowledge.cache import pickle_cached

    kb = pickle_cached("kb", key, lambda: load(extra), KnowledgeBase)
    kb.source_key = key  # what derived caches (the symptom reader's index) are keyed by
    return kb


def get_kb(extra: Iterable[Path | str] = ()) -> KnowledgeBase:
    """The knowledge base for these extra folders, loaded once per process."""
    key = tuple(str(Path(p).resolve()) for p in extra)
    kb = _CACHE.get(key)
    if kb is None:
        kb = _CACHE[key] = load_cached(extra)
    return kb
