"""`tlexpert batch`: formats, conformance, error rows, resume, parallel and Dask."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from harness.scaleout.batch import Journal, read_scenarios
from rules.conformance import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "examples" / "scenarios").iterdir())


def invoke(*args):
    return CliRunner().invoke(main, ["batch", *map(str, args)])


@pytest.fixture(scope="module")
def library_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("lib") / "rows.json"
    r = invoke(*LIBRARY, "-o", out, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text()), json.loads(r.stdout)["summary"]


def test_library_passes_every_check(library_rows):
    rows, summary = library_rows
    assert summary["scenarios"] >= 60 and summary["errors"] == 0
    assert summary["failed"] == 0 and summary["passed"] == summary["checks"] >= 60
    assert all(r["checks"] >= 1 for r in rows)  # every scenario carries expectations
    assert summary["plans_with_violations"] == 0 and all(r["violations"] is None for r in rows)


def test_library_covers_every_decision(library_rows):
    from knowledge import get_kb

    rows, _ = library_rows
    kb = get_kb()
    assert {r["family"] for r in rows} == {t.family.value for t in kb.tasks.values()}
    assert {r["technique"] for r in rows} == {t.id for t in kb.techniques.values() if t.kind == "core"}
    assert {r["approach"] for r in rows} == set(kb.sections["approaches"])
    assert {r["task"] for r in rows} == set(kb.tasks)
    risks = {x.split(":")[0] for r in rows for x in (r["risks"] or "").split(";") if x}
    diags = {x.split(":")[0] for r in rows for x in (r["diagnoses"] or "").split(";") if x}
    transfer = {k for k, p in kb.pitfalls.items() if p.scope == "transfer"}
    assert risks == transfer and diags == set(kb.pitfalls)
    fired = set()
    for r in rows:
        fired |= {f for f in (r["check_results"] or "").split(";")}
    assert {"criterion=pass", "first_fix=pass", "top_candidate_max_params=pass"} <= fired


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet", ".md"])
def test_output_formats_one_row_per_scenario(tmp_path, suffix):
    src = ROOT / "examples" / "scenarios" / "strategy.yaml"
    n = len(read_scenarios(src))
    out = tmp_path / f"rows{suffix}"
    r = invoke(src, "-o", out)
    assert r.exit_code == 0, r.output
    if suffix == ".csv":
        rows = list(csv.DictReader(out.open()))
        assert list(rows[0]) == COLUMNS
    elif suffix == ".json":
        rows = json.loads(out.read_text())
    elif suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
        assert rows[0]["dataset_size"] == 200
    else:
        rows = out.read_text().splitlines()[2:]
    assert len(rows) == n
    assert not list(tmp_path.glob(".*"))  # no temporary or journal file left


def test_bad_rows_become_error_rows_and_the_rest_goes_on(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        "scenarios:\n"
        "  - {id: good, task: text_classification, dataset_size: 100}\n"
        "  - {id: bad-task, task: text_clasification, dataset_size: 100}\n"
        "  - {id: missing, task: text_classification}\n"
        "  - {id: wrong-type, task: text_classification, dataset_size: lots}\n"
        "  - {id: bad-check, task: text_classification, dataset_size: 100, expect: {techniqe: lora}}\n"
        "  - {id: good2, task: image_classification, dataset_size: 100}\n")
    out = tmp_path / "o.json"
    r = invoke(f, "-o", out)
    assert r.exit_code == 2, r.output
    rows = json.loads(out.read_text())
    assert [x["id"] for x in rows] == ["good", "bad-task", "missing", "wrong-type", "bad-check", "good2"]
    status = {x["id"]: x for x in rows}
    assert status["good"]["status"] == status["good2"]["status"] == "ok"
    assert "s.yaml:3" in status["bad-task"]["error"] and "'task'" in status["bad-task"]["error"]
    assert "text_classification" in status["bad-task"]["error"]  # the nearest valid value
    assert "'dataset_size'" in status["missing"]["error"] and "required" in status["missing"]["error"]
    assert "'dataset_size'" in status["wrong-type"]["error"] and "integer" in status["wrong-type"]["error"]
    assert "expect.techniqe" in status["bad-check"]["error"] and "'technique'" in status["bad-check"]["error"]
    assert "Traceback" not in r.output


def test_unreadable_file_is_one_error_row(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [ {task: x\n")
    good = ROOT / "examples" / "scenarios" / "formats.jsonl"
    r = invoke(bad, good, "--format", "json")
    assert r.exit_code == 2
    out = json.loads(r.stdout)
    assert out["summary"]["scenarios"] == 1 + 3 and out["summary"]["errors"] == 1
    assert "malformed" in out["rows"][0]["error"]


def test_learning_rate_and_mitigation_checks_fail_when_the_plan_differs(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"id": "t", "task": "text_classification", "dataset_size": 3000, "domain_similarity": "low",
                             "target_domain": ["tweets"],
                             "expect": {"learning_rate": 1e-5, "mitigations_exclude": ["emoji_tokenization"]}}) + "\n")
    r = invoke(f)
    assert r.exit_code == 1, r.output
    assert "expected 1e-05, got 2e-05" in r.output and "emoji_tokenization" in r.output


def test_failed_check_exits_1_and_names_the_rules(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"id": "x", "task": "text_classification", "dataset_size": 100,
                             "expect": {"technique": "lora"}}) + "\n")
    r = invoke(f)
    assert r.exit_code == 1
    assert "FAIL x" in r.output and "expected 'lora', got 'feature_extraction'" in r.output
    assert "by technique.feature_extraction" in r.output


def test_resume_does_only_the_remaining_scenarios(tmp_path, monkeypatch):
    import rules.conformance as conformance

    src = ROOT / "examples" / "scenarios" / "strategy.yaml"
    out = tmp_path / "o.csv"
    full = invoke(src, "-o", tmp_path / "full.json")
    assert full.exit_code == 0
    expected = json.loads((tmp_path / "full.json").read_text())
    # an interrupted run: the journal holds the first 5 rows (keyed by content, as a run writes them),
    # one half-written line, no output
    from harness.scaleout.batch import read_scenarios
    from knowledge.loader import _disk_key

    j = Journal(out)
    j.keys = {(name, i): Journal.content_key(sc, _disk_key([]) or "") for name, i, sc in read_scenarios(str(src))}
    j.add(expected[:5])
    j.close(remove=False)
    with j.path.open("a") as fh:
        fh.write('{"id": "cut')
    seen = []
    real = conformance.consult_chunk
    monkeypatch.setattr(conformance, "consult_chunk", lambda items, d=(): seen.extend(items) or real(items, d))
    r = invoke(src, "-o", out, "--resume", "--chunk-size", "3")
    assert r.exit_code == 0, r.output
    assert len(seen) == len(expected) - 5
    rows = list(csv.DictReader(out.open()))
    assert [x["id"] for x in rows] == [x["id"] for x in expected]
    assert not j.path.exists()


def test_two_jobs_equal_one_job_row_for_row(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke(*LIBRARY, "-o", a).exit_code == 0
    assert invoke(*LIBRARY, "-o", b, "--jobs", "2", "--chunk-size", "7").exit_code == 0
    assert json.loads(a.read_text()) == json.loads(b.read_text())


def test_dask_local_cluster_equals_single_process(tmp_path):
    from dask.distributed import LocalCluster

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke(*LIBRARY, "-o", a).exit_code == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster:
        r = invoke(*LIBRARY, "-o", b, "--scheduler", cluster.scheduler_address, "--chunk-size", "9")
    assert r.exit_code == 0, r.output
    assert json.loads(a.read_text()) == json.loads(b.read_text())


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TLEXPERT_SCHEDULER_TIMEOUT", "2")  # a closed port is retried until the timeout
    r = invoke(ROOT / "examples" / "scenarios" / "formats.jsonl", "--scheduler", "tcp://127.0.0.1:9")
    assert r.exit_code == 2 and "cannot reach the Dask scheduler" in r.output


def test_bad_output_extension_and_resume_without_output(tmp_path):
    src = ROOT / "examples" / "scenarios" / "formats.jsonl"
    r = invoke(src, "-o", tmp_path / "o.xlsx")
    assert r.exit_code == 2 and "must end in" in r.output
    r = invoke(src, "--resume")
    assert r.exit_code == 2 and "--resume needs -o" in r.output


def test_batch_imports_no_heavy_library():
    code = ("import sys, cli\n"
            "try:\n    cli.main(['batch', 'examples/scenarios/strategy.yaml', '--format', 'json'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'pandas', 'peft') if m in sys.modules), file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert p.stderr.strip().splitlines()[-1] == "[]"


def test_a_folder_stands_for_the_scenario_files_in_it(tmp_path):
    """`tlexpert batch examples/scenarios` reads every scenario file directly in the folder (as a shell glob
    would, in name order); a folder without any is one clear error."""
    (tmp_path / "a.yaml").write_text("task: text_classification\ndataset_size: 500\n")
    (tmp_path / "b.json").write_text('{"task": "image_classification", "dataset_size": 800}')
    (tmp_path / "notes.txt").write_text("not a scenario")
    r = CliRunner().invoke(main, ["batch", str(tmp_path), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"]["scenarios"] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(main, ["batch", str(empty)])
    assert r.exit_code == 2 and "a folder without scenario files" in r.output
