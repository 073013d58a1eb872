"""The plan file is the contract: `run PLAN` executes what the file says, edits included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from knowledge import get_kb
from knowledge.schema import KnowledgeError
from rules.contract import SCHEMA_VERSION, Plan, PlanError, differences
from rules.plan_schema import json_schema

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, plan: dict) -> Path:
    path.write_text(json.dumps(plan))
    return path


# --- the typed contract


def test_every_plan_of_the_scenario_library_is_a_valid_typed_plan():
    import yaml

    from rules.engine import get_engine
    from rules.scenario import normalize
    from rules.reader.symptoms import match_symptom

    kb = get_kb()

    n = 0
    for f in sorted((ROOT / "examples" / "scenarios").glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        for sc in doc.get("scenarios", []):
            raw = {**(doc.get("defaults") or {}), **sc}
            raw.pop("expect", None)
            try:
                sc = normalize(raw, kb, symptom_matcher=lambda text, where: match_symptom(text, kb, where))
            except KnowledgeError:
                continue  # the library's examples of input the rules refuse
            plan = get_engine(kb).consult(sc, trace=False)
            assert plan.to_dict()["hyperparameters"]["learning_rate"] > 0
            assert set(plan.recipes) | {plan.technique_id} >= {"feature_extraction", "fine_tuning", "lora"}
            n += 1
    assert n > 50


def test_validator_names_the_field_path_and_what_was_expected(tmp_path, plan_file):
    plan, _ = plan_file()
    bad = json.loads(json.dumps(plan))
    bad["hyperparameters"]["dropout"] = 2
    with pytest.raises(PlanError, match=r"'hyperparameters\.dropout' field of p\.json must be a number at least "
                                        r"0 and below 1.*Got 2"):
        Plan.from_dict(bad, "p.json", get_kb())
    bad = json.loads(json.dumps(plan))
    bad["recipes"]["fine_tuning"]["learnig_rate"] = 1e-3
    with pytest.raises(PlanError, match=r"'recipes\.fine_tuning\.learnig_rate'.*Did you mean 'learning_rate'"):
        Plan.from_dict(bad, "p.json", get_kb())
    bad = json.loads(json.dumps(plan))
    del bad["evaluation"]["seeds"]
    with pytest.raises(PlanError, match=r"'evaluation\.seeds' field of p\.json is required"):
        Plan.from_dict(bad, "p.json", get_kb())


def test_zero_is_a_value_not_a_default(tmp_path, plan_file):
    plan, _ = plan_file()
    plan["hyperparameters"].update(dropout=0, max_grad_norm=0, weight_decay=0)
    p = Plan.from_dict(plan, "p", get_kb())
    assert (p.hyperparameters.dropout, p.hyperparameters.max_grad_norm, p.hyperparameters.weight_decay) == (0, 0, 0)


def test_json_schema_file_is_current():
    """docs/plan.schema.json is what `tlexpert plan-schema` prints (regenerate it when the contract changes)."""
    on_disk = json.loads((ROOT / "docs" / "plan.schema.json").read_text())
    assert on_disk == json.loads(json.dumps(json_schema()))
    r = CliRunner().invoke(main, ["plan-schema"])
    assert r.exit_code == 0 and json.loads(r.stdout) == on_disk
    assert on_disk["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


def test_differences_list_executed_fields_only(tmp_path, plan_file):
    plan, _ = plan_file()
    a = Plan.from_dict(plan, "a", get_kb())
    edited = json.loads(json.dumps(plan))
    edited["hyperparameters"]["learning_rate"] = 1e-4
    edited["risks"] = []  # explanation, not executed
    b = Plan.from_dict(edited, "b", get_kb())
    assert [d["field"] for d in differences(b, a)] == ["hyperparameters.learning_rate"]


# --- run executes the file


def test_run_refuses_an_old_plan_and_names_the_remedy(tmp_path, plan_file):
    plan, path = plan_file()
    _write(path, {**plan, "schema_version": 1})
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "schema_version" in r.output and "tlexpert consult" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()


def test_run_refuses_a_task_it_cannot_execute(tmp_path):
    r = CliRunner().invoke(main, ["consult", "--task", "question_answering", "--dataset-size", "20000",
                                  "--no-input", "--format", "json"])
    path = _write(tmp_path / "qa.json", json.loads(r.stdout))
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "carries out plans for image_classification, text_classification, text_generation only" in r.output
    assert "question_answering" in r.output
    assert not (tmp_path / "o").exists()


def test_a_plan_cannot_ask_for_more_than_the_command_line_allows(plan_file):
    """batch_size 10^40 or epochs 10^9 in a plan file are refused by field, as --batch-size 5000 is."""
    for field, value in (("batch_size", 10**40), ("batch_size", 5000), ("epochs", 10**9), ("learning_rate", 50.0)):
        plan, _ = plan_file()
        plan["hyperparameters"][field] = value
        with pytest.raises(PlanError, match=rf"'hyperparameters\.{field}' field .* at most"):
            Plan.from_dict(plan, "p.json", get_kb())
