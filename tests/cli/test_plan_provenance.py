"""`run PLAN` consults again only when the plan file cannot vouch for itself: made by other knowledge or
rules, or edited since it was written (``made_from``, rules/provenance.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import cli
from rules.engine import TransferEngine


@pytest.fixture
def runs(monkeypatch):
    """Stands in for the training (cli._run) and counts the engine's consultations."""
    seen = {"plans": [], "consults": 0}
    real = TransferEngine.consult

    def counting(self, *a, **k):
        seen["consults"] += 1
        return real(self, *a, **k)

    monkeypatch.setattr(TransferEngine, "consult", counting)
    monkeypatch.setattr(cli, "_run", lambda ctx, plan, name, opts, **k: seen["plans"].append(plan))
    return seen


def _written(tmp_path) -> tuple:
    path = tmp_path / "plan.json"
    r = CliRunner().invoke(cli.main, ["consult", "--task", "text_classification", "--dataset-size", "800",
                                      "--no-input", "-o", str(path)])
    assert r.exit_code == 0, r.output
    return path, json.loads(path.read_text())


def test_an_unedited_plan_of_this_knowledge_runs_without_a_second_consultation(tmp_path, runs):
    path, plan = _written(tmp_path)
    assert set(plan["made_from"]) == {"knowledge", "plan"}
    runs["consults"] = 0
    r = CliRunner().invoke(cli.main, ["run", str(path)])
    assert r.exit_code == 0, r.output
    assert runs["consults"] == 0 and "different plan" not in r.stderr
    assert runs["plans"][0].hyperparameters.learning_rate == plan["hyperparameters"]["learning_rate"]


def test_an_edited_plan_is_consulted_once_and_the_differences_are_shown(tmp_path, runs):
    path, plan = _written(tmp_path)
    plan["hyperparameters"]["learning_rate"] = 0.0123
    path.write_text(json.dumps(plan))
    runs["consults"] = 0
    r = CliRunner().invoke(cli.main, ["run", str(path)])
    assert r.exit_code == 0, r.output
    assert runs["consults"] == 1
    assert "running the file as written" in r.stderr and "hyperparameters.learning_rate" in r.stderr
    assert runs["plans"][0].hyperparameters.learning_rate == 0.0123  # the file runs as written


def test_a_plan_made_by_other_knowledge_is_consulted_once(tmp_path, runs):
    path, plan = _written(tmp_path)
    plan["made_from"]["knowledge"] = "0" * 20
    path.write_text(json.dumps(plan))
    runs["consults"] = 0
    r = CliRunner().invoke(cli.main, ["run", str(path)])
    assert r.exit_code == 0, r.output
    assert runs["consults"] == 1 and "different plan" not in r.stderr  # same plan: nothing to report
