"""Hostile and broken input through the commands: every case that once ended in a traceback,
unbounded memory or a silently wrong result now gives one ``Error:`` line naming the file and
what was expected, exit status 2 (or a warning with its reason), in bounded time and memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "task: text_classification\ndataset_size: 800\n"
BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result, *words, code=2) -> str:
    """The one ``Error:`` line of a failed command (no traceback), with ``words`` in it."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def batch_errors(result) -> list[str]:
    """The error rows of a ``batch --format json`` run."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return [r["error"] for r in json.loads(result.stdout)["rows"] if r["status"] == "error"]


@pytest.fixture
def d(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative -o paths land here; the working folder is restored after
    return tmp_path


# --- 5000-digit integers


def test_a_5000_digit_integer_is_refused_by_every_reader(d):
    big = SCENARIO.replace("800", "9" * 5000)
    (d / "big.yaml").write_text(big)
    (d / "k.yaml").write_text("thresholds:\n  - id: alpha\n    value: " + "1" * 5000 + "\n")
    (d / "log.csv").write_text("loss\n1\n0.5\n")
    expected = ("big.yaml:2", "integer of 5,000 digits", "at most 64")
    error_line(invoke("consult", "--scenario", d / "big.yaml", "--no-input"), *expected)
    error_line(invoke("diagnose", d / "log.csv", "--scenario", d / "big.yaml"), *expected)
    r = invoke("batch", d / "big.yaml", "--format", "json")
    assert r.exit_code == 2 and any("integer of 5,000 digits" in e for e in batch_errors(r))
    error_line(invoke("--knowledge", d / "k.yaml", "models"), "k.yaml:3", "integer of 5,000 digits")
    (d / "big.json").write_text('{"task": "text_classification", "dataset_size": ' + "9" * 5000 + "}")
    error_line(invoke("consult", "--scenario", d / "big.json", "--no-input"), "integer of 5,000 digits")


# --- paths


def test_a_symlink_loop_fifo_folder_and_special_file_are_refused(d):
    os.symlink("loop.yaml", d / "loop.yaml")
    error_line(invoke("consult", "--scenario", d / "loop.yaml"), "loop.yaml", "symbolic link loop")
    os.mkfifo(d / "pipe.yaml")
    t = time.perf_counter()
    error_line(invoke("consult", "--scenario", d / "pipe.yaml"), "pipe.yaml", "FIFO")
    assert time.perf_counter() - t < 10  # a FIFO with no writer must not hang the reader
    error_line(invoke("diagnose", d / "pipe.yaml"), "FIFO")
    error_line(invoke("consult", "--scenario", d), "is a directory")
    error_line(invoke("consult", "--scenario", "/proc/self/environ"), "special system file")
    error_line(invoke("consult", "--scenario", "/dev/zero"), "special system file")
    error_line(invoke("diagnose", "/proc"), "special system file")


def test_output_paths_are_checked_before_any_work(d):
    (d / "file").write_text("x")
    args = ["consult", "--task", "text_classification", "--dataset-size", "100", "--no-input", "-o"]
    error_line(invoke(*args, "/proc/nope/plan.json"), "/proc/nope/plan.json", "system folder")
    error_line(invoke(*args, "file/plan.json"), "file/plan.json", "is a file, not a folder")
    (d / "scen.yaml").write_text(SCENARIO)
    r = invoke("batch", d / "scen.yaml", "-o", "file/x.csv")
    line = error_line(r, "file/x.csv", "is a file, not a folder")
    assert "scheduler" not in line
    assert not list(d.glob("file*/*")) and sorted(p.name for p in d.iterdir()) == ["file", "scen.yaml"]


def test_run_out_under_a_file_is_refused_before_training(d):
    (d / "file").write_text("x")
    error_line(invoke("run", ROOT / "examples" / "customer_reviews.yaml", "--out", "file/run"), "--out",
               "is a file")


# --- encodings and row types


def test_binary_jsonl_is_refused_in_diagnose_baseline_and_batch(d):
    (d / "bin.jsonl").write_bytes(bytes(range(256)) * 4)
    (d / "latin.jsonl").write_bytes('{"loss": 1, "name": "caf\xe9"}\n'.encode("latin-1"))
    (d / "ok.csv").write_text("loss\n1\n0.5\n")
    error_line(invoke("diagnose", d / "bin.jsonl"), "bin.jsonl:1", "binary file")
    error_line(invoke("diagnose", d / "ok.csv", "--baseline", d / "bin.jsonl"), "bin.jsonl", "binary")
    error_line(invoke("diagnose", d / "latin.jsonl"), "latin.jsonl:1", "not UTF-8", "0xe9")
    r = invoke("batch", d / "bin.jsonl", "--format", "json")
    assert r.exit_code == 2 and "binary file" in batch_errors(r)[0]


@pytest.mark.parametrize("line, got", [("5", "int"), ("null", "NoneType"), ('"text"', "str"), ("[1, 2]", "list")])
def test_a_jsonl_line_that_is_not_an_object(d, line, got):
    (d / "log.jsonl").write_text('{"loss": 1.0}\n' + line + '\n{"loss": 0.5}\n')
    error_line(invoke("diagnose", d / "log.jsonl"), "log.jsonl:2", "JSON object", f"Got {got} instead")
    r = invoke("batch", d / "log.jsonl", "--format", "json")  # a batch input: that row is an error row
    assert r.exit_code == 2 and len(batch_errors(r)) == 3


PLAN = {"scenario": {}, "technique": {"choice": "fine_tuning"}}


@pytest.mark.parametrize("record, field", [({"plan": [], "config": {}, "results": {}}, "'plan'"),
                                           ({"plan": PLAN, "config": {}, "results": [1]}, "'results'"),
                                           ({"plan": PLAN, "config": {}, "results": {"fine_tuning": 3}},
                                            "results.fine_tuning"),
                                           ({"plan": PLAN, "config": {}, "results": {}, "baseline": {"a": 1}},
                                            "'baseline'"),
                                           ([1, 2], "expected a run record")])
def test_a_run_json_of_the_wrong_shape(d, record, field):
    (d / "run").mkdir()
    (d / "run" / "run.json").write_text(json.dumps(record))
    error_line(invoke("diagnose", d / "run"), field)


def test_csv_fields_over_the_limit_and_under_it(d):
    from knowledge.reading import LIMITS

    huge = "x" * (LIMITS.string_chars + 10)
    (d / "field.csv").write_text("loss,note\n1," + huge + "\n")
    (d / "header.csv").write_text("loss," + huge + "\n1,2\n")
    error_line(invoke("diagnose", d / "field.csv"), "field.csv:2", "malformed CSV", "1048576")
    error_line(invoke("diagnose", d / "header.csv"), "header.csv:1", "malformed CSV")
    (d / "scen.csv").write_text("task,dataset_size,notes\ntext_classification,100," + huge + "\n")
    r = invoke("batch", d / "scen.csv", "--format", "json")
    assert r.exit_code == 2 and "malformed CSV" in batch_errors(r)[0]
    # 200 KB (over csv's default 128 KB) is an ordinary long field, read as such
    (d / "long.csv").write_text("step,loss,note\n1,1.0," + "y" * 200_000 + "\n2,0.5,z\n")
    assert invoke("diagnose", d / "long.csv").exit_code == 0


# --- batch


def test_batch_checks_and_options(d):
    (d / "lots.yaml").write_text(SCENARIO + "expect: {top_candidate_max_params: lots}\n")
    r = invoke("batch", d / "lots.yaml", "--format", "json")
    assert r.exit_code == 2
    assert "expect.top_candidate_max_params" in batch_errors(r)[0] and "'lots'" in batch_errors(r)[0]
    (d / "m.yaml").write_text(SCENARIO + "expect: {top_candidate_max_params: 30M}\n")
    assert invoke("batch", d / "m.yaml").exit_code in (0, 1)
    error_line(invoke("batch", d / "m.yaml", "--scheduler", "not a url"), "--scheduler", "tcp://host:8786")
    error_line(invoke("batch", d / "m.yaml", "--scheduler", "tcp://host:99999"), "--scheduler")


def test_batch_of_empty_inputs_is_an_error_not_zero_scenarios(d):
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("task,dataset_size\n")
    (d / "empty.yaml").write_text("scenarios: []\n")
    (d / "empty.jsonl").write_text("\n\n")
    for name in ("empty.csv", "header.csv", "empty.yaml", "empty.jsonl"):
        r = invoke("batch", d / name, "--format", "json")
        assert r.exit_code == 2, (name, r.output)
        assert batch_errors(r), name


def test_batch_resume_with_a_damaged_journal_recomputes_those_rows(d):
    (d / "two.yaml").write_text("- {task: text_classification, dataset_size: 100}\n"
                                "- {task: image_classification, dataset_size: 5000}\n")
    out = d / "rows.json"
    assert invoke("batch", d / "two.yaml", "-o", out).exit_code == 0
    good = json.loads(out.read_text())
    journal = d / ".rows.json.partial.jsonl"
    broken = [{k: v for k, v in good[0].items() if k != "file"}, {k: v for k, v in good[1].items() if k != "status"},
              5, None, "text", {"file": 1, "row": "x"}]
    journal.write_text("\n".join(json.dumps(b) for b in broken) + "\n{cut")
    out.unlink()
    r = invoke("batch", d / "two.yaml", "-o", out, "--resume")
    assert r.exit_code == 0, r.output
    assert [row["status"] for row in json.loads(out.read_text())] == ["ok", "ok"]
    assert not journal.exists()


# --- YAML: aliases, duplicates


def _run_bounded(args, mem_gib=1.5, timeout=60):
    """Run the CLI in a child with an address-space limit; (exit code, stdout bytes, seconds)."""
    code = ("import resource,sys; resource.setrlimit(resource.RLIMIT_AS, (%d, %d)); "
            "sys.argv=['tlexpert', *sys.argv[1:]]; import cli; cli.main()") % (mem_gib * 2**30, mem_gib * 2**30)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, timeout=timeout,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t


@pytest.mark.parametrize("tail", ["task: *i\ndataset_size: 100\n", "name: *i\ntask: text_classification\n"
                                  "dataset_size: 100\n", "task: text_classification\ndataset_size: *i\n"])
def test_an_alias_bomb_fails_fast_in_bounded_memory(d, tail):
    (d / "bomb.yaml").write_text(BOMB + tail)
    assert len(BOMB) < 600
    code, out, err, seconds = _run_bounded(["consult", "--scenario", d / "bomb.yaml", "--format", "json"])
    assert code == 2, err[-500:]
    assert len(out) == 0 and len(err) < 500, err
    assert b"alias" in err and b"bomb.yaml:" in err
    assert seconds < 30
    code, out, err, seconds = _run_bounded(["batch", d / "bomb.yaml", "--format", "json"])
    assert code == 2 and len(out) < 20_000 and b"alias" in out


def test_an_alias_bomb_in_a_knowledge_folder(d):
    (d / "k.yaml").write_text(BOMB.replace("a: &a", "x: &a") + "sources: *i\n")
    error_line(invoke("--knowledge", d / "k.yaml", "models"), "alias")


def test_recursive_alias_and_ordinary_merge_keys(d):
    (d / "rec.yaml").write_text("task: &t [text_classification, *t]\ndataset_size: 100\n")
    error_line(invoke("consult", "--scenario", d / "rec.yaml"), "rec.yaml:1", "refers to itself")
    (d / "merge.yaml").write_text("base: &b {task: text_classification, dataset_size: 100}\n"
                                  "scenarios:\n  - <<: *b\n    id: one\n  - <<: *b\n    id: two\n"
                                  "    dataset_size: 5000\n")
    r = invoke("batch", d / "merge.yaml", "--format", "json")
    rows = json.loads(r.stdout)["rows"]
    assert [row["dataset_size"] for row in rows] == [100, 5000], r.output


def test_duplicate_keys_name_both_lines(d):
    (d / "dup.yaml").write_text("task: text_classification\ndataset_size: 100\n\ntask: image_classification\n")
    error_line(invoke("consult", "--scenario", d / "dup.yaml"), "dup.yaml:4", "duplicate key 'task'", "line 1")
    (d / "dup.json").write_text('{"task": "text_classification",\n "dataset_size": 100,\n "task": "x"}')
    error_line(invoke("consult", "--scenario", d / "dup.json"), "dup.json", "duplicate key 'task'")
    (d / "log.json").write_text('[{"loss": 1, "loss": 2}]')
    error_line(invoke("diagnose", d / "log.json"), "log.json", "duplicate key 'loss'")


# --- printing user strings


def test_control_characters_in_a_name_are_escaped(d):
    (d / "ctrl.yaml").write_text(SCENARIO + 'name: "evil\\0name\\u202eoverride\\e[31m"\n')
    r = invoke("consult", "--scenario", d / "ctrl.yaml", "--no-input")
    assert r.exit_code == 0
    title = r.output.splitlines()[0]
    assert "\x00" not in r.output and "\u202e" not in r.output and "\x1b" not in r.output
    assert title == "Transfer-learning plan: evil\\x00name\\u202eoverride\\x1b[31m"
    (d / "ctrl2.yaml").write_text('task: "text\\u202eclassification"\ndataset_size: 100\n')
    line = error_line(invoke("consult", "--scenario", d / "ctrl2.yaml"), "'task'")
    assert "\u202e" not in line and "\\u202e" in line


def test_control_characters_in_batch_ids_are_escaped(d):
    (d / "ids.yaml").write_text('- {id: "evil\\u202eid\\0", task: nope, dataset_size: 100}\n'
                                '- {id: "ok\\u202e", task: text_classification, dataset_size: 100,'
                                ' expect: {technique: lora}}\n'
                                '- {id: "md\\u202e", task: text_classification, dataset_size: 100}\n')
    r = invoke("batch", d / "ids.yaml")
    assert r.exit_code == 2
    assert "\u202e" not in r.output and "\x00" not in r.output
    assert "ERROR evil\\u202eid\\x00:" in r.output and "FAIL ok\\u202e" in r.output
    (d / "md.yaml").write_text('- {id: "md\\u202e", task: text_classification, dataset_size: 100}\n')
    r = invoke("batch", d / "md.yaml")
    assert r.exit_code == 0 and "| md\\u202e |" in r.output and "\u202e" not in r.output


def test_a_huge_name_is_refused_and_a_long_one_truncated(d):
    (d / "huge.yaml").write_text(SCENARIO + "name: " + "n" * 50_000_000 + "\n")
    t = time.perf_counter()
    error_line(invoke("consult", "--scenario", d / "huge.yaml"), "huge.yaml:3", "50,000,000 characters")
    assert time.perf_counter() - t < 20
    (d / "long.yaml").write_text(SCENARIO + "name: " + "n" * 500_000 + "\n")
    r = invoke("consult", "--scenario", d / "long.yaml", "--no-input")
    assert r.exit_code == 0 and len(r.output) < 60_000
    (d / "longtask.yaml").write_text("task: " + "t" * 500_000 + "\ndataset_size: 100\n")
    line = error_line(invoke("consult", "--scenario", d / "longtask.yaml"))
    assert len(line) < 2_000 and "500,000 characters" in line


# --- implausible values


def test_implausible_values_get_an_error_or_a_warning_with_the_reason(d):
    base = ["consult", "--task", "text_classification", "--no-input"]
    error_line(invoke(*base, "--dataset-size", "800", "--num-classes", "5000"), "'num_classes'", "at most",
               "800", "every class needs")
    r = CliRunner().invoke(main, [*base, "--dataset-size", "800", "--gpu-memory-gb", "24",
                                                  "--compute", "cpu", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)
    assert "Warning: gpu_memory_gb is 24 but compute is cpu" in r.stderr
    r = CliRunner().invoke(main, [*base, "--dataset-size", "1e13"])
    assert r.exit_code == 0 and "dataset_size is 1e+13" in r.stderr
    (d / "log.csv").write_text("loss\n1\n0.5\n")
    for bad in ("nan", "NaN", "inf", "-inf"):
        r = invoke("diagnose", d / "log.csv", "--majority-rate", bad)
        assert r.exit_code == 2 and "Error: Invalid value for '--majority-rate'" in r.output, r.output
    assert "not a finite number" in invoke("diagnose", d / "log.csv", "--majority-rate", "nan").output
    r = invoke("diagnose", d / "log.csv", "--majority-rate", "0.1", "--num-classes", "3")
    error_line(r, "--majority-rate", "1/--num-classes")
    r = invoke("run", "plan.json", "--learning-rate", "nan")
    assert r.exit_code == 2 and "not a finite number" in r.output


def test_bounded_memory_of_this_module():
    """The cases above ran in this process: it stays far from the gigabytes a bomb used to take."""
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2 * 2**20  # KiB: under 2 GiB


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_disk_or_a_closed_standard_output_is_one_error_line():
    """`> /dev/full` and `>&-`: exit status 2 with one Error line on stderr, never a traceback or a silent 0."""
    for how in ("full", "closed"):
        cmd = [sys.executable, "-m", "cli", "consult", "--task", "text_classification", "--dataset-size", "100",
               "--no-input"]
        if how == "full":
            with open("/dev/full", "w") as full:
                r = subprocess.run(cmd, cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
        else:
            r = subprocess.run(["sh", "-c", " ".join(cmd) + " >&-"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               timeout=120)
        assert r.returncode == 2, (how, r.stderr)
        assert r.stderr.startswith("Error:") and "Traceback" not in r.stderr, (how, r.stderr)
    for args in (["--version"], ["models", "--help"]):  # the group's own output, and with stderr full too
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, stdout=full, stderr=full, timeout=120)
        assert r.returncode == 2, args


def test_a_lone_surrogate_escape_in_jsonl_data_is_refused_where_it_is_read(tmp_path):
    """JSON lets "\\ud800" through as text that no tokenizer or writer can take; the reading layer refuses
    it with the file and line, for every command that reads JSONL (here rank-models' data)."""
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "fine", "label": "a"}\n{"text": "bad \\ud800 here", "label": "b"}\n')
    r = CliRunner().invoke(main, ["rank-models", "--data", str(f), "--candidates", "all-MiniLM-L6-v2"])
    assert r.exit_code == 2 and "d.jsonl:2" in r.output and "lone surrogate" in r.output, r.output


def test_fifos_found_while_walking_a_log_folder_never_block(d):
    """A FIFO beside a real log, a FIFO named like a printed log, and one named like a TensorBoard event
    file: each is skipped or refused by name without being opened for a blocking read."""
    good = d / "beside"
    good.mkdir()
    (good / "metrics.csv").write_text("epoch,train_loss,val_loss\n" + "".join(
        f"{e},{1 / e:.3f},{1.1 / e:.3f}\n" for e in range(1, 6)))
    os.mkfifo(good / "x.csv")
    (d / "printed").mkdir()
    os.mkfifo(d / "printed" / "train.log")
    (d / "tb").mkdir()
    os.mkfifo(d / "tb" / "events.out.tfevents.1.host")
    t = time.perf_counter()
    r = invoke("diagnose", good)
    assert r.exit_code == 0, r.output
    for sub in ("printed", "tb"):
        r = invoke("diagnose", d / sub)
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert time.perf_counter() - t < 30


def test_work_stays_linear_in_columns_and_line_length(d):
    """A CSV with more columns than any training log is refused at its header (no quadratic pass, no memory
    of rows x columns); a printed log with one 5 MB token is read in linear time."""
    wide = d / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(20_000)) + "\n" + ",".join("1" for _ in range(20_000)) + "\n")
    t = time.perf_counter()
    r = invoke("diagnose", wide)
    assert r.exit_code == 2 and "20,000 or more columns" in r.output, r.output
    long = d / "train.log"
    long.write_text("Epoch 1/2\nloss: 0.9 - val_loss: 1.0\nEpoch 2/2\nloss: 0.5 - val_loss: 0.7\n" + "x" * 5_000_000 + "\n")
    invoke("diagnose", long)
    assert time.perf_counter() - t < 30


def test_a_field_over_the_limit_is_reported_on_its_own_line_quoted_or_not(d):
    from knowledge.reading import LIMITS

    huge = "x" * (LIMITS.string_chars + 10)
    for name, body in (("quoted.csv", f'loss,note\n1,a\n2,"{huge}"\n3,b\n'), ("plain.csv", f"loss,note\n1,a\n2,{huge}\n")):
        (d / name).write_text(body)
        error_line(invoke("diagnose", d / name), f"{name}:3", "malformed CSV")
        r = invoke("batch", d / name, "--format", "json")
        assert r.exit_code == 2 and f"{name}:3" in batch_errors(r)[0], batch_errors(r)


def test_a_printed_log_saved_as_utf16_says_so(d):
    """Windows tools save text as UTF-16: the log is refused with what it is, not read as no metrics."""
    (d / "train.log").write_text("Epoch 1/2\nloss: 0.9 - val_loss: 1.0\n", encoding="utf-16")
    error_line(invoke("diagnose", d / "train.log"), "UTF-16")
