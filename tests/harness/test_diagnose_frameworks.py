"""`tlexpert diagnose` on logs that real frameworks wrote, made here: Hugging Face Trainer and
Lightning runs with planted faults, Keras-format logs, a real tlexpert run folder, and the
README's diagnose commands executed exactly as written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("framework_logs", ROOT / "bench" / "framework_logs.py")
fl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fl)

# what each planted fault must be called (the first diagnosis, or every one that must appear)
EXPECTED = {
    "healthy": set(),
    "lr_too_high": {"divergence"},
    "shuffled_labels": {"failed_run"},
    "tiny_train_many_epochs": {"overfitting"},
}


def report_of(*args):
    r = CliRunner().invoke(main, ["diagnose", *map(str, args), "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def pitfalls(rep):
    return {d["pitfall"] for d in rep["diagnoses"]}


def _lr_change(rep):
    return next((c for d in rep["diagnoses"] for f in d["fixes"] for c in f["changes"]
                 if c["field"] == "learning_rate"), None)


@pytest.fixture(scope="module")
def hf_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {case: fl.hf_trainer_run(root / case, case) for case in fl.HF_CASES}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(fl.HF_CASES))
def test_trainer_planted_faults_are_named(hf_runs, case):
    rep = report_of(hf_runs[case])
    assert rep["runs"][0]["kind"] == "hf_trainer"
    if not EXPECTED[case]:
        assert rep["healthy"], rep["symptoms"]
        return
    assert EXPECTED[case] <= pitfalls(rep), rep["symptoms"]
    known = rep["config"]["known"]
    assert known["n_classes"]["value"] == 3 and known["batch_size"]["value"] == 16  # config.json, trainer_state
    assert "frozen layers" in rep["config"]["not_in_log"]
    lr = known["learning_rate"]["value"]
    assert lr <= fl.HF_CASES[case][2]  # the peak of the logged (linearly decaying) schedule
    ch = _lr_change(rep)
    if case == "lr_too_high":
        assert ch["from"] == lr and ch["to"] < lr  # lowered from the value the log holds


@pytest.fixture(scope="module")
def lightning_runs(tmp_path_factory):
    pytest.importorskip("lightning", reason="lightning is in the test extra; not installed here")
    root = tmp_path_factory.mktemp("lightning")
    return {case: fl.lightning_run(root / case, case) for case in fl.LIGHTNING_CASES}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(fl.LIGHTNING_CASES))
def test_lightning_csvlogger_planted_faults_are_named(lightning_runs, case):
    folder = lightning_runs[case]
    assert (folder / "metrics.csv").exists() and (folder / "hparams.yaml").exists()
    rep = report_of(folder.parent.parent)  # the folder the user points at: lightning_logs/ is found
    assert rep["runs"][0]["kind"] == "lightning_csv"
    assert rep["config"]["known"]["learning_rate"] == {"value": fl.LIGHTNING_CASES[case][2],
                                                        "from": "hparams.yaml (lr)"}
    if not EXPECTED[case]:
        assert rep["healthy"], rep["symptoms"]
    else:
        assert rep["diagnoses"][0]["pitfall"] in EXPECTED[case], rep["symptoms"]


@pytest.mark.parametrize("history", [False, True], ids=["csvlogger", "history_csv"])
@pytest.mark.parametrize("case", list(fl.KERAS_CASES))
def test_keras_format_logs(tmp_path, case, history):
    f = fl.keras_run(tmp_path / "training.log" if not history else tmp_path / "history.csv", case, history)
    rep = report_of(f)
    assert rep["runs"][0]["kind"] == ("keras_history" if history else "keras_csv")
    if case == "healthy":
        assert rep["healthy"], rep["symptoms"]
    elif case == "tiny_train_many_epochs":
        assert rep["diagnoses"][0]["pitfall"] == "overfitting"
    else:  # shuffled labels: validation at chance while the training loss barely moves
        assert "failed_run" in pitfalls(rep), rep["symptoms"]


# --- a real tlexpert run folder


@pytest.fixture(scope="module")
def real_run(tiny_bert, tmp_path_factory):
    from harness.training.run import RunConfig, execute
    from knowledge import get_kb
    from rules.engine import get_engine
    from rules.scenario import normalize

    old = os.environ.get("TLEXPERT_CACHE_DIR")
    os.environ["TLEXPERT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    kb = get_kb()
    plan = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": 90, "num_classes": 3,
                                             "compute": "cpu"}, kb)).to_dict()
    out = tmp_path_factory.mktemp("runs") / "my-run"
    execute(plan, RunConfig(techniques=["feature_extraction", "fine_tuning"], seeds=3, model=tiny_bert, out=str(out),
                            builtin_size=90, max_length=32, overrides={"epochs": 2, "learning_rate": 1e-3}), kb)
    if old is None:
        os.environ.pop("TLEXPERT_CACHE_DIR", None)
    else:
        os.environ["TLEXPERT_CACHE_DIR"] = old
    return out


@pytest.mark.slow
def test_diagnose_on_a_run_folder_agrees_with_its_report(real_run):
    rec = json.loads((real_run / "run.json").read_text())
    report_md = (real_run / "report.md").read_text()
    rep = report_of(real_run)
    run_group = next(g for g in rep["groups"] if g.get("agrees_with_report") is not None)
    assert run_group["agrees_with_report"], (run_group["recorded_diagnoses"], rec["diagnoses"])
    assert [d["pitfall"] for d in run_group["diagnoses"]] == [d["pitfall"] for d in rec["diagnoses"]]
    for d in run_group["diagnoses"]:
        assert f"**{d['name']}** (confidence {d['confidence']:.2f})" in report_md
    assert [s["id"] for s in run_group["symptoms"]] == [s["id"] for s in rec["symptoms"]]
    assert run_group["tests"] == rec["tests"]
    # every technique's seeds and the baseline are read, with the run's own configuration
    techs = {g["name"].rsplit(": ", 1)[1] for g in rep["groups"] if g["runs"]}
    assert techs == {"feature_extraction", "fine_tuning"}
    assert len(rep["baseline_runs"]) == 3
    ft = next(g for g in rep["groups"] if g["name"].endswith(": fine_tuning"))
    assert len(ft["runs"]) == 3 and ft["config"]["known"]["learning_rate"]["value"] == 1e-3
    assert ft["config"]["not_in_log"] == []
    if not rec["diagnoses"]:
        assert run_group["healthy"]
    text = CliRunner().invoke(main, ["diagnose", str(real_run)]).output
    assert "run (tests, symptoms and plan recorded in run.json)" in text


# --- the README's diagnose commands, exactly as written


def _readme_commands(prefix: str) -> list[str]:
    cmds = []
    for line in (ROOT / "README.md").read_text().splitlines():
        line = line.strip()
        if line.startswith(prefix):
            cmds.append(re.split(r"\s+#", line)[0].strip())
    return cmds


def _trainer_state(d: Path, acc: float):
    hist = []
    for e in range(1, 5):
        hist.append({"epoch": float(e), "learning_rate": 2e-5 * (1 - e / 5), "loss": 1.0 / e + 0.1, "step": 10 * e})
        hist.append({"epoch": float(e), "eval_accuracy": acc - 0.04 * (4 - e), "eval_loss": 1.0 / e + 0.2,
                     "step": 10 * e})
    d.mkdir(parents=True)
    (d / "trainer_state.json").write_text(json.dumps({"log_history": hist, "num_train_epochs": 4,
                                                      "train_batch_size": 16}))


@pytest.mark.slow
def test_readme_diagnose_commands_run_as_written(real_run, tmp_path):
    cmds = _readme_commands("tlexpert diagnose")
    assert len(cmds) >= 2, cmds
    work = tmp_path / "work"
    shutil.copytree(real_run, work / "runs" / "my-run")
    for s, (acc, base) in enumerate([(0.61, 0.70), (0.60, 0.72), (0.62, 0.71)]):
        _trainer_state(work / f"seed{s}", acc)
        _trainer_state(work / f"scratch{s}", base)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "tlexpert"
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -c 'import cli; cli.main()' \"$@\"\n")
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for cmd in cmds:
        r = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in r.stderr, (cmd, r.stderr)
        if "--fail-on error" in cmd and "--baseline" in cmd:
            # the seeds score below the from-scratch runs: negative transfer, an error
            assert r.returncode == 1, (cmd, r.stdout, r.stderr)
            assert "Negative transfer" in r.stdout and "3 baseline run(s)" in r.stdout
        elif "--format json" in cmd:
            assert r.returncode == 0, (cmd, r.stdout, r.stderr)
            rep = json.loads(r.stdout)
            assert len(rep["runs"]) == 3 and len(rep["baseline_runs"]) == 3
            assert [d["pitfall"] for d in rep["diagnoses"]] == ["negative_transfer"]
        else:
            assert r.returncode == 0, (cmd, r.stdout, r.stderr)
            assert r.stdout.startswith("Read "), r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("case", list(fl.HF_CASES))
def test_trainer_printed_log_reads_like_its_state_file(hf_runs, case):
    """What the real Trainer printed (one dict per log line) is read as a log of its own and diagnosed
    as its trainer_state.json is: same curve, same pitfalls (class count given for both)."""
    printed = hf_runs[case].parent / f"{hf_runs[case].name}.stdout"
    assert "{'loss': " in printed.read_text()
    text_rep = report_of(printed, "--num-classes", "3")
    state_rep = report_of(hf_runs[case], "--num-classes", "3")
    assert text_rep["runs"][0]["kind"] == "trainer_text"
    assert pitfalls(text_rep) == pitfalls(state_rep), (text_rep["symptoms"], state_rep["symptoms"])
