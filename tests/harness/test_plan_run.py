"""`run PLAN` executes what the file says: edits, the plan's evaluation, flags recorded as overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main



def _write(path: Path, plan: dict) -> Path:
    path.write_text(json.dumps(plan))
    return path


@pytest.mark.slow
def test_an_edited_plan_reaches_the_harness(tiny_bert, tmp_path, monkeypatch, plan_file):
    """Learning rate, seeds and alpha edited in plan.json are what runs; the knowledge's differ and say so."""
    from harness.evaluation import stats

    plan, path = plan_file()
    plan["technique"]["choice"] = "fine_tuning"  # a hand-edited technique runs with the plan's hyperparameters
    plan["hyperparameters"] = {**plan["recipes"].pop("fine_tuning"), "learning_rate": 3.3e-4, "epochs": 1}
    plan["recipes"]["lora"] = {**plan["hyperparameters"], "frozen_layers": "all",
                               "lora": {"rank": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["query"]}}
    plan["evaluation"].update(seeds=2, alpha=0.01)
    _write(path, plan)
    alphas = []
    real = stats.apply_holm
    monkeypatch.setattr(stats, "apply_holm", lambda tests, alpha: alphas.append(alpha) or real(tests, alpha))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["run", str(path), "--model", tiny_bert, "--out", str(out), "--format", "json",
                                  "--max-length", "32"])
    assert r.exit_code == 0, r.output
    assert "running the file as written" in r.stderr and "hyperparameters.learning_rate" in r.stderr
    rec = json.loads((out / "run.json").read_text())
    assert rec["config"]["hyperparameters"]["fine_tuning"]["learning_rate"] == 3.3e-4
    assert len(rec["results"]["fine_tuning"]) == 2 and alphas == [0.01]
    assert rec["plan"]["evaluation"]["alpha"] == 0.01
    # a CLI flag overrides a plan field, and the run records which
    r = CliRunner().invoke(main, ["run", str(path), "--model", tiny_bert, "--out", str(tmp_path / "run2"),
                                  "--format", "json", "--max-length", "32", "--seeds", "3"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "run2" / "run.json").read_text())
    assert {"field": "evaluation.seeds", "plan": 2, "used": 3, "by": "--seeds"} in rec["overrides"]
    assert len(rec["results"]["fine_tuning"]) == 3


@pytest.mark.slow
def test_reconsult_takes_the_current_knowledge(tiny_bert, tmp_path, plan_file):
    plan, path = plan_file()
    plan["hyperparameters"]["learning_rate"] = 0.123
    _write(path, plan)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["run", str(path), "--reconsult", "--model", tiny_bert, "--out", str(out),
                                  "--format", "json", "--technique", "feature_extraction", "--seeds", "2"])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["plan"]["hyperparameters"]["learning_rate"] != 0.123
