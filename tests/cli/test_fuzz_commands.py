"""Fuzzing the commands' options and input files, in process with click's CliRunner.

For every generated command line: no traceback; exit status 0 (done), 1 (a check failed: batch
``expect:``, diagnose ``--fail-on``) or 2 (bad input: one ``Error:`` line, or click's usage
error); bounded time; and no partial output file: ``-o`` is either absent or complete and
parseable, and no temporary file is left beside it.

Cases per test: ``FULL`` with ``TLEXPERT_FUZZ=full`` (``make test``), a tenth (at least 20) otherwise.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main

FUZZ_FULL = os.environ.get("TLEXPERT_FUZZ", "").lower() == "full"
SECONDS = 20.0
EXIT_MEANING = {0: "done", 1: "a check failed (batch expect:, diagnose --fail-on)", 2: "bad input"}

NASTY = ["", " ", "0", "-1", "1e999", "nan", "NaN", "inf", "-inf", "9" * 80, "1_000", "2.5", "30M", "1.5B", "0x10",
         "\u202e", "\x1b[31m", "é", "😀", "text_classification", "image_classification", "text-classification",
         "cpu", "consumer_gpu", "tpu", "mobile", "edge", "same", "related", "different", "high", "low", "x" * 500,
         "none", "null", "--help", "-o", "a,b", ";", "overfitting", "the loss went up after epoch 2", "5000", "800",
         "2", "3", "100000", "tcp://", "tcp://h:99999", "h:1:2", "not a url", "inproc://", "nlp_transformer",
         "cnn", "profile", "technique", "warning", "error"]
value = st.one_of(st.sampled_from(NASTY), st.text(max_size=15).filter(lambda s: "\x00" not in s))


def fuzz_settings(n):
    return settings(max_examples=n if FUZZ_FULL else max(20, n // 10), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


MEMORY = [lambda: None]  # the memory_ok check of this module (conftest.py)


@pytest.fixture(scope="module", autouse=True)
def bounded_memory(memory_ok):
    MEMORY[0] = memory_ok


def run(args, out=None):
    """Invoke and check the contract; returns the result."""
    t = time.perf_counter()
    r = CliRunner().invoke(main, args)
    assert time.perf_counter() - t < SECONDS, args
    exc = r.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        raise AssertionError("traceback for " + repr(args) + "\n"
                             + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    assert r.exit_code in EXIT_MEANING, (args, r.exit_code, r.output)
    if r.exit_code == 2:
        # one Error: line; batch reports invalid scenarios as ERROR rows (text) or error rows (JSON)
        errors = [ln for ln in r.output.splitlines() if ln.startswith(("Error:", "ERROR ", '      "error": "'))]
        assert errors, (args, r.output)
        assert all(len(e) < 5_000 for e in errors), args
        assert all(c not in e for e in errors for c in ("\x00", "\u202e", "\x1b")), errors
    if out is not None:
        folder = out.parent
        if folder.is_dir():
            assert not [n for n in os.listdir(folder) if ".tmp" in n], os.listdir(folder)
        if len(out.name) < 255 and out.is_file():
            if args[0] == "consult" and out.suffix not in (".yaml", ".yml") or out.suffix == ".json":
                json.loads(out.read_text(encoding="utf-8"))  # complete, not cut short (a plan is JSON but in YAML)
            elif out.suffix == ".parquet":
                import pyarrow.parquet as pq

                pq.read_table(out)  # complete: the footer is there
            out.unlink()
    MEMORY[0]()
    return r


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmd")
    (d / "ok.yaml").write_text("task: text_classification\ndataset_size: 800\nnum_classes: 3\n"
                               "expect: {technique: fine_tuning}\n")
    (d / "log.csv").write_text("step,loss,eval_loss,eval_accuracy\n1,1.0,1.1,0.4\n2,0.8,1.0,0.5\n3,0.6,1.2,0.5\n")
    (d / "file").write_text("x")
    (d / "sub").mkdir()
    return d


OUTS = ["plan.json", "plan.yaml", "sub/plan.json", "new/deeper/plan.json", "file/plan.json", "sub", "/proc/x.json",
        "plan.txt", "table.csv", "table.md", "table.jsonl", "x" * 300 + ".json", "table.parquet"]


@fuzz_settings(300)
@given(flags=st.dictionaries(st.sampled_from(["--task", "--dataset-size", "--num-classes", "--task-similarity",
                                              "--domain-similarity", "--compute", "--gpu-memory-gb", "--deployment",
                                              "--latency-ms", "--source-domain", "--target-domain", "--symptom",
                                              "--format", "--scenario"]), value, max_size=8),
       base=st.booleans(), out=st.one_of(st.none(), st.sampled_from(OUTS)), explain=st.booleans())
def test_fuzz_consult_options(flags, base, out, explain, d, fuzz_count):
    fuzz_count("consult options")
    args = ["consult", "--no-input"]
    if base:
        args += ["--task", "text_classification", "--dataset-size", "5000"]
    for k, v in flags.items():
        args += [k, str(d / "ok.yaml") if k == "--scenario" and v == "ok" else v]
    if explain:
        args.append("--explain")
    target = None
    if out is not None:
        target = d / out if not out.startswith("/") else None
        args += ["-o", str(target) if target else out]
    run(args, target)


@fuzz_settings(150)
@given(opts=st.dictionaries(st.sampled_from(["--loss", "--val-loss", "--target-metric", "--source-metric",
                                             "--num-classes", "--majority-rate", "--fail-on", "--format",
                                             "--baseline", "--scenario"]), value, max_size=5),
       path=st.sampled_from(["log.csv", "ok.yaml", "file", "sub", "nope.csv", "/proc/self/status", "/dev/null"]))
def test_fuzz_diagnose_options(opts, path, d, fuzz_count):
    fuzz_count("diagnose options")
    args = ["diagnose", path if path.startswith("/") else str(d / path)]
    for k, v in opts.items():
        args += [k, str(d / "log.csv") if k == "--baseline" and v == "0" else v]
    run(args)


@fuzz_settings(200)
@given(opts=st.dictionaries(st.sampled_from(["--chunk-size", "--format", "--scheduler"]), value, max_size=2),
       out=st.one_of(st.none(), st.sampled_from(OUTS)), resume=st.booleans(),
       files=st.lists(st.sampled_from(["ok.yaml", "log.csv", "file", "sub", "nope.yaml"]), min_size=1, max_size=3))
def test_fuzz_batch_options(opts, out, resume, files, d, fuzz_count):
    from harness.scaleout.fanout import SCHEDULER_RE

    fuzz_count("batch options")
    if SCHEDULER_RE.fullmatch(opts.get("--scheduler", "")):
        opts.pop("--scheduler")  # a well-formed address would try to connect: tested without a network
    args = ["batch", *[str(d / f) for f in files]]
    for k, v in opts.items():
        args += [k, v]
    if resume:
        args.append("--resume")
    target = None
    if out is not None:
        target = d / out if not out.startswith("/") else None
        args += ["-o", str(target) if target else out]
    run(args, target)


@fuzz_settings(150)
@given(cmd=st.sampled_from(["models", "rules", "symptoms"]),
       opts=st.dictionaries(st.sampled_from(["--task", "--family", "--max-params", "--format", "--topic",
                                             "--offline"]), value, max_size=3),
       knowledge=st.one_of(st.none(), st.sampled_from(["ok.yaml", "file", "sub", "nope", "log.csv"])))
def test_fuzz_catalog_options(cmd, opts, knowledge, d, fuzz_count):
    fuzz_count("models/rules/symptoms options")
    args = ["--knowledge", str(d / knowledge)] if knowledge else []
    args.append(cmd)
    for k, v in opts.items():
        args += [k] if k == "--offline" else [k, v]
    run(args)
