"""Fuzzing the reading layer (knowledge/reading.py) and the readers built on it.

Each test generates malformed and adversarial input for one reader (YAML, JSON, JSONL, CSV,
paths, output paths, scenarios, knowledge folders, training logs, printed logs, TensorBoard event
files, data files, causal-LM data, batch inputs, batch journals) and asserts that the reader either returns a value or raises the project's
one error type (``KnowledgeError``: one ``Error:`` line, exit status 2), within a time bound,
and that the memory a case allocates stays bounded (``memory_ok``). The limits are shrunk (``SMALL``) so that every
limit is reached by inputs small enough to generate quickly; the real limits are tested by
size in tests/cli/test_hostile.py.

Cases per test: the full count with ``TLEXPERT_FUZZ=full`` (``make fuzz``), a tenth (at least 20) otherwise
(``make test``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge import reading, writing, yamlio
from knowledge.reading import Limits
from knowledge.schema import KnowledgeError

SMALL = Limits(structured_bytes=200_000, log_bytes=200_000, data_bytes=200_000, string_chars=2_000,
               int_digits=64, alias_nodes=2_000, depth=40, walk_depth=3, walk_entries=200)
FUZZ_FULL = os.environ.get("TLEXPERT_FUZZ", "").lower() == "full"
SECONDS = 5.0  # per case; real cases take milliseconds


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    monkeypatch.setattr(reading, "LIMITS", SMALL)


def fuzz_settings(n):
    return settings(max_examples=n, deadline=None, derandomize=False, database=None,
                    suppress_health_check=list(HealthCheck))


def bounded(fn, *args, **kwargs):
    """Call ``fn``: a value, or None when it raised the project's error; nothing else, in time."""
    t = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    except KnowledgeError as exc:
        msg = str(exc)  # the CLI prints it escaped and cut (show): here, that it is short and says something
        assert msg.strip() and len(msg) < 20_000, len(msg)
        return None
    finally:
        assert time.perf_counter() - t < SECONDS


# --- generators

NASTY = ["9" * 80, "-" + "1" * 70, "0x" + "f" * 70, "1e999", "-.inf", ".nan", "NaN", "2020-13-45",
         "2001-12-14t21:59:43.10-05:00", "~", "null", "yes", "on", "0o777", "1_000", "+12", "\x00", "\u202e",
         "\ufeff", "\x1b[31m", "é", "😀", "'", '"', "\\", "#", ":", "- ", "? ", "|", ">", "%YAML 1.1", "---", "...",
         "x" * 2_500, "[" * 50, "{" * 50, "&a", "*a", "*nope", "<<", "!!binary", "!!python/object:os.system",
         "!!set", "!!omap", "!!timestamp", "!!int", "!!float", "!!str", "!!map", "!!seq", "!custom"]
FIELDS = ["task", "dataset_size", "num_classes", "task_similarity", "domain_similarity", "compute",
          "gpu_memory_gb", "deployment", "latency_ms", "source_domain", "target_domain", "symptoms", "name",
          "id", "expect", "scenarios", "defaults", "modality", "notes", "bogus"]
VALUES = ["text_classification", "image_classification", "5000", "800", "3", "cpu", "consumer_gpu", "related",
          "low", "mobile", "30", "24", "[a, b]", "{x: 1}", "overfitting", "the loss went up"]

word = st.one_of(st.sampled_from(NASTY), st.sampled_from(FIELDS), st.sampled_from(VALUES),
                 st.text(max_size=12))
TAGS = ["!!int", "!!float", "!!timestamp", "!!binary", "!!set", "!!python/tuple", "!!str", "!!null", "!!bool"]
indent = st.sampled_from(["", "  ", "    ", "\t", " "])


@st.composite
def yaml_texts(draw):
    """YAML-ish documents: mappings, lists, anchors and aliases (bombs, recursion), tags, duplicate keys,
    deep nesting, and random text."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=200))
    lines = []
    if kind == 1:  # an alias bomb of random width and depth
        width, depth = draw(st.integers(2, 12)), draw(st.integers(1, 8))
        lines.append('l0: &l0 ["lol"]')
        for i in range(1, depth + 1):
            lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]")
        lines.append(f"{draw(st.sampled_from(FIELDS))}: *l{depth}")
    if kind == 2:  # recursion through an alias
        lines.append(draw(st.sampled_from(["a: &a [*a]", "a: &a {b: *a}", "&a [1, *a]", "a: &a\n  b: *a"])))
    if kind == 3:  # deep nesting
        n = draw(st.integers(1, 1200))
        lines.append(draw(st.sampled_from(["[" * n + "]" * n, "{a: " * n + "1" + "}" * n,
                                           "".join("  " * i + "a:\n" for i in range(min(n, 300))) + "b"])))
    for _ in range(draw(st.integers(0, 12))):
        k, v = draw(word), draw(word)
        form = draw(st.integers(0, 6))
        if form == 0:
            lines.append(f"{draw(indent)}{k}: {v}")
        elif form == 1:
            lines.append(f"{draw(indent)}- {k}: {v}")
        elif form == 2:
            lines.append(f"{k}: &{draw(st.sampled_from(['a', 'b']))} {v}")
        elif form == 3:
            lines.append(f"{k}: *{draw(st.sampled_from(['a', 'b', 'zz']))}")
        elif form == 4:
            lines.append(f"{k}: {draw(st.sampled_from(TAGS))} {v}")
        elif form == 5:
            lines.append(f'{k}: "{v}"')
        else:
            lines.append(f"<<: *{draw(st.sampled_from(['a', 'b']))}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n---\nx: 1\n", "\n...\n"]))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
              st.sampled_from(NASTY)),
    lambda kids: st.one_of(st.lists(kids, max_size=5), st.dictionaries(st.sampled_from(FIELDS + ["loss", "step",
                           "eval_loss", "epoch", "eval_accuracy", "log_history", "plan", "results", "config"]),
                                                                       kids, max_size=5)),
    max_leaves=20)


@st.composite
def json_texts(draw):
    text = json.dumps(draw(json_values))
    op = draw(st.integers(0, 6))
    if op == 1 and text:  # truncated
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif op == 2:  # huge integer
        text = text.replace("0", "9" * draw(st.integers(1, 200)), 1) if "0" in text else "1" * 300
    elif op == 3:  # duplicate key
        text = '{"loss": 1, "loss": ' + text + "}"
    elif op == 4:  # deep nesting
        n = draw(st.integers(1, 3000))
        text = "[" * n + text + "]" * n
    elif op == 5:
        text = draw(st.text(max_size=100))
    elif op == 6:  # non-finite numbers, bare words
        text = text.replace("null", draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "nul", "undefined"])))
    return text


CELLS = NASTY + VALUES + ["1.5", "-3", "nan", "inf", "", " ", '"unclosed', 'a"b', '"a""b"', '"x\ny"', "y" * 2_500]


@st.composite
def csv_texts(draw):
    cols = draw(st.lists(st.sampled_from(["text", "label", "loss", "step", "val_loss", "task", "dataset_size",
                                          "expect.family", "expect.top_candidate_max_params", "", "x" * 2_500]
                                         + NASTY[:20]), max_size=6))
    n_rows, width = draw(st.integers(0, 6)), draw(st.integers(0, 7))
    cells = draw(st.lists(st.sampled_from(CELLS), min_size=n_rows * width, max_size=n_rows * width))
    rows = [",".join(cells[i * width:(i + 1) * width]) for i in range(n_rows)]
    text = "\n".join([",".join(cols), *rows])
    if draw(st.booleans()):
        text = text.replace(",", draw(st.sampled_from([";", "\t", '","'])))
    return text + draw(st.sampled_from(["", "\n", "\r\n", "\x00", '"']))


def file_bytes(texts):
    """Bytes of a generated text, sometimes damaged: a BOM, Latin-1, a NUL, random bytes."""
    return st.one_of(
        texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
        texts.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "surrogatepass")),
        texts.map(lambda t: t.encode("latin-1", "replace")),
        st.tuples(texts, st.binary(min_size=1, max_size=8)).map(
            lambda p: p[0].encode("utf-8", "surrogatepass") + p[1]),
        st.binary(max_size=300))


# --- readers


@given(text=yaml_texts())
def test_fuzz_yaml_reader(text, fuzz_count, memory_ok):
    fuzz_count("yaml")
    data = bounded(yamlio.parse_yaml, text, "f.yaml")
    if data is not None:
        assert len(reading.show(data)) < 400  # showing what was read stays bounded
    memory_ok()


@given(data=file_bytes(yaml_texts()), suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_fuzz_yaml_files_through_the_scenario_contract(data, suffix, tmp_path_factory, fuzz_count, kb, memory_ok):
    from rules.scenario import normalize

    fuzz_count("scenario file")
    f = tmp_path_factory.mktemp("y") / f"s{suffix}"
    f.write_bytes(data)
    raw = bounded(yamlio.read_yaml, f)
    if raw is not None:
        bounded(normalize, raw, kb, origin=str(f))
    memory_ok()


@given(text=json_texts())
def test_fuzz_json_reader(text, fuzz_count):
    fuzz_count("json")
    bounded(reading.parse_json, text, "f.json")


@given(lines=st.lists(json_texts(), max_size=8), row_type=st.sampled_from([dict, None]),
       cut=st.booleans())
def test_fuzz_jsonl_reader(lines, row_type, cut, fuzz_count):
    fuzz_count("jsonl")
    out = bounded(reading.read_jsonl, "f.jsonl", text="\n".join(lines), row_type=row_type, tolerate_cut_last=cut)
    if out is not None and row_type is dict:
        assert all(isinstance(r, dict) for _, r in out)


@given(text=csv_texts())
def test_fuzz_csv_reader(text, fuzz_count):
    fuzz_count("csv")
    out = bounded(reading.parse_csv, text, "f.csv")
    if out is not None:
        header, rows = out
        assert all(isinstance(r, dict) for _, r in rows)
        assert len(set(h for h in header if h)) == len([h for h in header if h])


@pytest.fixture(scope="module")
def specials(tmp_path_factory):
    """A folder of awkward things to read: FIFO, socket, loops, links into /proc and /dev."""
    d = tmp_path_factory.mktemp("specials")
    (d / "ok.yaml").write_text("task: text_classification\ndataset_size: 10\n")
    (d / "empty.yaml").write_text("")
    (d / "big.yaml").write_text("a: " + "x" * 300_000)
    (d / "folder").mkdir()
    (d / "file").write_text("x")
    os.mkfifo(d / "fifo")
    os.symlink("loop", d / "loop")
    os.symlink("a2", d / "a1")
    os.symlink("a1", d / "a2")
    os.symlink("nowhere", d / "broken")
    os.symlink("/proc/self/environ", d / "proc")
    os.symlink("/dev/zero", d / "zero")
    os.symlink("folder", d / "folderlink")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock"))
    yield d
    sock.close()


NAMES = ["ok.yaml", "empty.yaml", "big.yaml", "folder", "file", "fifo", "loop", "a1", "broken", "proc", "zero",
         "folderlink", "sock", "nope", "", ".", "..", "file/x", "loop/x", "fifo/x", "folder/", "/proc/self/status",
         "/dev/null", "/sys/kernel", "/", "~", "x" * 300, "a\x00b", "\u202e.yaml"]


@given(parts=st.lists(st.one_of(st.sampled_from(NAMES), st.text(max_size=10)), min_size=1, max_size=3),
       want=st.sampled_from(["file", "dir", "any"]), kind=st.sampled_from(["structured", "log", "data"]))
def test_fuzz_paths(parts, want, kind, specials, fuzz_count):
    fuzz_count("paths")
    p = str(specials / "/".join(parts)) if not parts[0].startswith("/") else "/".join(parts)
    got = bounded(reading.safe_path, p, want=want)
    if got is not None and want == "file":
        bounded(reading.read_bytes, p, kind=kind)
    if got is not None and want == "dir":
        bounded(reading.walk_files, p, "metrics.csv")


@given(parts=st.lists(st.one_of(st.sampled_from(NAMES + ["new.json", "sub/new.json"]), st.text(max_size=10)),
                      min_size=1, max_size=3))
def test_fuzz_output_paths(parts, specials, fuzz_count):
    fuzz_count("output paths")
    p = str(specials / "/".join(parts)) if not parts[0].startswith("/") else "/".join(parts)
    before = set(os.listdir(specials))
    ok = bounded(writing.check_output, p)
    assert set(os.listdir(specials)) == before  # checking writes nothing
    if ok is not None and not Path(p).exists() and str(Path(p).resolve()).startswith(str(specials)):
        writing.write_atomic(p, b"{}")  # a path that passed the check is written, or it is a bug
        assert Path(p).read_bytes() == b"{}"
        Path(p).unlink()
    leftovers = [n for n in os.listdir(specials) if ".tmp" in n]
    assert not leftovers


# --- readers built on the layer


@given(raw=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_fuzz_scenario_values(raw, kb, fuzz_count):
    from rules.engine import get_engine
    from rules.scenario import normalize, scenario_warnings

    fuzz_count("scenario values")
    sc = bounded(normalize, raw, kb, origin="f.yaml")
    if sc is not None:
        assert all(len(w) < 1000 for w in scenario_warnings(sc))
        plan = bounded(get_engine(kb).consult, sc, trace=False)
        assert plan is None or plan["candidates"] is not None


@given(text=yaml_texts())
def test_fuzz_knowledge_folder(text, tmp_path_factory, fuzz_count, memory_ok):
    from knowledge.loader import load

    fuzz_count("knowledge folder")
    d = tmp_path_factory.mktemp("k")
    (d / "extra.yaml").write_text("thresholds:\n" + "\n".join("  " + ln for ln in text.splitlines()) + "\n"
                                  if text.startswith("- ") else text)
    bounded(load, [d])
    memory_ok()


LOG_KINDS = ["metrics.csv", "log.csv", "log.json", "log.jsonl", "trainer_state.json", "run/run.json",
             "ckpt/checkpoint-7/trainer_state.json", "lightning/version_0/metrics.csv"]


@st.composite
def log_files(draw):
    kind = draw(st.sampled_from(LOG_KINDS))
    if kind.endswith(".csv"):
        return kind, draw(file_bytes(csv_texts()))
    if kind.endswith(".jsonl"):
        return kind, draw(file_bytes(st.lists(json_texts(), max_size=6).map("\n".join)))
    records = st.lists(st.dictionaries(st.sampled_from(["loss", "eval_loss", "step", "epoch", "eval_accuracy",
                                                        "learning_rate", "train_runtime"]), json_values,
                                       max_size=5), max_size=8)
    if kind.endswith("trainer_state.json"):
        value = draw(st.one_of(records.map(lambda r: {"log_history": r}), json_values))
    elif kind.endswith("run.json"):
        value = draw(st.one_of(json_values, st.fixed_dictionaries(
            {"plan": st.one_of(json_values, st.just({"technique": {"choice": "fine_tuning"}})),
             "config": json_values,
             "results": st.one_of(json_values, st.dictionaries(st.sampled_from(["fine_tuning", "lora"]), st.lists(
                 st.fixed_dictionaries({"seed": json_values, "accuracy": json_values,
                                        "curves": st.one_of(json_values, records)}), max_size=3), max_size=2))})))
    else:
        value = draw(st.one_of(records, json_values))
    text = json.dumps(value)
    return kind, draw(st.one_of(st.just(text.encode()), file_bytes(st.just(text))))


@given(log=log_files())
def test_fuzz_training_logs(log, tmp_path_factory, fuzz_count):
    from harness.troubleshooting.locate import read_logs

    fuzz_count("training logs")
    kind, data = log
    d = tmp_path_factory.mktemp("log")
    f = d / kind
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    target = d if "/" in kind else f
    runs = bounded(read_logs, target)
    if runs is not None:
        assert runs and all(r.series for r in runs)


@given(data=st.one_of(file_bytes(csv_texts()), file_bytes(st.lists(json_texts(), max_size=6).map("\n".join))),
       suffix=st.sampled_from([".csv", ".jsonl", ".tsv"]))
def test_fuzz_data_files(data, suffix, tmp_path_factory, fuzz_count):
    from harness.training.data import load_text

    fuzz_count("data files")
    f = tmp_path_factory.mktemp("data") / f"train{suffix}"
    f.write_bytes(data)
    out = bounded(load_text, f)
    if out is not None:
        assert len(out.texts) == len(out.labels) > 0


@given(data=st.one_of(file_bytes(yaml_texts()), file_bytes(csv_texts()),
                      file_bytes(st.lists(json_texts(), max_size=6).map("\n".join))),
       suffix=st.sampled_from([".yaml", ".json", ".jsonl", ".csv"]))
def test_fuzz_batch_inputs(data, suffix, tmp_path_factory, kb, fuzz_count):
    from harness.scaleout.batch import read_scenarios
    from rules.conformance import consult_row
    from rules.engine import get_engine

    fuzz_count("batch inputs")
    f = tmp_path_factory.mktemp("batch") / f"in{suffix}"
    f.write_bytes(data)
    items = bounded(read_scenarios, f)
    for file, row, raw in (items or [])[:5]:
        out = consult_row(kb, get_engine(kb), file, row, raw)  # a bad row is an error row, never an exception
        assert out["status"] in ("ok", "error")
        assert out["status"] == "ok" or len(out["error"]) < 20_000


@given(lines=st.lists(st.one_of(json_texts(), json_values.map(json.dumps)), max_size=8))
def test_fuzz_batch_journal(lines, tmp_path_factory, fuzz_count):
    from harness.scaleout.batch import Journal
    from rules.conformance import COLUMNS

    fuzz_count("batch journal")
    out = tmp_path_factory.mktemp("journal") / "rows.csv"
    journal = Journal(out)
    journal.path.write_text("\n".join(lines))
    rows = bounded(journal.done)
    assert rows is not None  # a damaged journal never stops a resume
    for r in rows.values():
        assert set(COLUMNS) <= set(r)


# --- formats added with printed logs, TensorBoard and causal-LM data

LINE_TEMPLATES = ["Epoch {a}/{b}", "{a}/{b} [==============================] - 1s 2ms/step - loss: {x} - accuracy: {y} - "
                  "val_loss: {z} - val_accuracy: {w}", "{'loss': {x}, 'learning_rate': {y}, 'epoch': {a}}",
                  "{'eval_loss': '{z}', 'eval_accuracy': '{w}', 'epoch': {a}}", "step {a}: loss={x} val_loss={z}",
                  "| epoch {a} | {b}/ 2983 batches | lr {y} | ms/batch 11.61 | loss {x} | ppl {z}",
                  "[{a}, {b}] loss: {x}", "Epoch [{a}/{b}], Step [{b}/600], Loss: {x}", "\x1b[32m{x}\x1b[0m\r",
                  "Traceback (most recent call last):", "{x}"]
NUMBERS = st.one_of(st.sampled_from(["0.5", "1e-3", "nan", "inf", "-1e308", "1e400", "0", "-0.0", "3,5", "9" * 70]),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**6, 10**6).map(str),
                    st.sampled_from(NASTY), st.text(max_size=8))


@st.composite
def printed_logs(draw):
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        t = draw(st.sampled_from(LINE_TEMPLATES))
        for k in "abxyzw":  # placeholders filled one by one: the templates' own braces stay as written
            t = t.replace("{" + k + "}", draw(NUMBERS))
        lines.append(t)
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines) + draw(st.sampled_from(["", "\n", "x" * 3000]))


@given(data=file_bytes(printed_logs()), name=st.sampled_from(["train.log", "output.txt", "stdout", "log.out"]))
def test_fuzz_printed_logs(data, name, tmp_path_factory, fuzz_count, memory_ok):
    from harness.troubleshooting.locate import read_logs

    fuzz_count("printed logs")
    f = tmp_path_factory.mktemp("printed") / name
    f.write_bytes(data)
    runs = bounded(read_logs, f)
    if runs is not None:
        assert runs and all(r.series for r in runs)


@pytest.fixture(scope="module")
def event_file(tmp_path_factory) -> bytes:
    """The bytes of a real event file, written by torch's SummaryWriter (TensorBoard's format)."""
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    d = tmp_path_factory.mktemp("tb-src")
    w = SummaryWriter(str(d))
    for step in range(12):
        w.add_scalar("Loss/train", 1.0 / (step + 1), step)
        w.add_scalar("Loss/val", 1.2 / (step + 1), step)
    w.close()
    return next(d.glob("events.out.tfevents.*")).read_bytes()


@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
       tail=st.binary(max_size=64), random_file=st.booleans(), junk=st.binary(max_size=400))
def test_fuzz_tensorboard_files(event_file, cut, flips, tail, random_file, junk, tmp_path_factory, fuzz_count,
                                memory_ok):
    """A real event file truncated, with flipped bytes, with bytes appended, or random bytes under its name."""
    from harness.troubleshooting.locate import read_logs

    fuzz_count("tensorboard files")
    data = bytearray(junk if random_file else event_file[:cut % (len(event_file) + 1)])
    for at, x in flips:
        if data:
            data[at % len(data)] ^= x
    d = tmp_path_factory.mktemp("tb")
    (d / "events.out.tfevents.1.host").write_bytes(bytes(data) + tail)
    runs = bounded(read_logs, d)
    if runs is not None:
        assert runs and all(r.series for r in runs)


LM_KEYS = ["instruction", "input", "output", "prompt", "completion", "text", "messages", "role", "content"]
messages = st.lists(st.fixed_dictionaries({"role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool"]),
                                                             json_values),
                                           "content": st.one_of(st.text(max_size=20), json_values)}), max_size=4)


@given(rows=st.lists(st.one_of(st.dictionaries(st.sampled_from(LM_KEYS), st.one_of(json_values, st.text(max_size=30),
                                                                                   messages), max_size=4),
                               json_values), max_size=6), mangle=st.booleans())
def test_fuzz_causal_lm_data(rows, mangle, tmp_path_factory, fuzz_count, memory_ok):
    """Causal-LM training data (instructions, chat, prompt/completion, text) of any shape: examples whose
    prompt and response are text, or the project's error."""
    from harness.training.lm_data import read_examples

    fuzz_count("causal-LM data")
    f = tmp_path_factory.mktemp("lm") / "train.jsonl"
    text = "\n".join(json.dumps(r) for r in rows)
    f.write_bytes(text.encode("utf-8", "surrogatepass")[: len(text) // 2] if mangle else text.encode())
    out = bounded(read_examples, f)
    if out is not None:
        assert out and all(isinstance(e.prompt, str) and isinstance(e.response, str) for e in out)


# each test's number of cases: the full profile sums to more than 10,000 across readers
FULL = {"test_fuzz_yaml_reader": 2500, "test_fuzz_yaml_files_through_the_scenario_contract": 800,
        "test_fuzz_json_reader": 2000, "test_fuzz_jsonl_reader": 1000, "test_fuzz_csv_reader": 2000,
        "test_fuzz_paths": 500, "test_fuzz_output_paths": 300, "test_fuzz_scenario_values": 600,
        "test_fuzz_knowledge_folder": 60, "test_fuzz_training_logs": 500, "test_fuzz_data_files": 400,
        "test_fuzz_batch_inputs": 300, "test_fuzz_batch_journal": 300, "test_fuzz_printed_logs": 500,
        "test_fuzz_tensorboard_files": 300, "test_fuzz_causal_lm_data": 500}


for _name, _n in FULL.items():
    globals()[_name] = fuzz_settings(_n if FUZZ_FULL else max(20, _n // 10))(globals()[_name])
