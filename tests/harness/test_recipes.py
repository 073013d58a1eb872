"""A recipe per technique: a comparison, a case study or a fix round that runs several techniques
gives each its own resolved hyperparameters; a head never trains with a backbone's recipe."""

from harness.troubleshooting.autofix import apply_fix
from rules.contract import DATA_LEVEL
from harness.training.run import RunConfig, as_plan, execute, technique_hyper
from knowledge import get_kb
from rules.engine import get_engine
from rules.scenario import normalize

# what the TweetEval case studies do: a fine-tuning plan with "the same sound recipe", 3 epochs
CASE = {"task": "text_classification", "dataset_size": 1500, "num_classes": 3, "compute": "consumer_gpu",
        "domain_similarity": "low", "source_domain": ["wikipedia", "news"], "target_domain": ["tweets"]}
FT_RECIPE = {"learning_rate": 5e-5, "frozen_layers": 0, "unfreeze": "none", "epochs": 3}
BACKBONE_KEYS = ("learning_rate", "epochs", "batch_size", "frozen_layers", "warmup_ratio", "unfreeze")


def _ft_plan():
    kb = get_kb()
    plan = get_engine(kb).consult(normalize(CASE, kb)).to_dict()
    assert plan["technique"]["choice"] == "fine_tuning"
    plan["hyperparameters"].update(FT_RECIPE)
    return plan


def _assert_head_recipe(hyper):
    fe = get_kb().techniques["feature_extraction"].defaults
    for k in BACKBONE_KEYS:
        assert hyper.get(k) == fe.get(k), f"the head got the backbone's {k}: {hyper.get(k)!r}"
    assert hyper["probe"] == fe["probe"] and hyper["head"] == "linear"


def test_a_comparison_gives_the_head_its_own_recipe():
    kb = get_kb()
    overrides = {"epochs": 3, "learning_rate": 5e-5, "batch_size": 16, "head": None}
    ft = technique_hyper(kb, _ft_plan(), "fine_tuning", overrides, 6, alone=False)
    fe = technique_hyper(kb, _ft_plan(), "feature_extraction", overrides, 6, alone=False)
    assert (ft["learning_rate"], ft["epochs"], ft["batch_size"]) == (5e-5, 3, 16)
    _assert_head_recipe(fe)
    # the head's own keys reach the head only; a per-technique mapping reaches its technique only
    over = {"head": "mlp", "feature_extraction": {"learning_rate": 1e-2}, "fine_tuning": {"epochs": 7}}
    assert technique_hyper(kb, _ft_plan(), "feature_extraction", over, 6, alone=False)["learning_rate"] == 1e-2
    ft2 = technique_hyper(kb, _ft_plan(), "fine_tuning", over, 6, alone=False)
    assert ft2["head"] is None and ft2["epochs"] == 7 and ft2["learning_rate"] == 5e-5
    # run alone, feature extraction takes the user's flags (they can only mean its head)
    assert technique_hyper(kb, _ft_plan(), "feature_extraction", {"epochs": 4}, 6, alone=True)["epochs"] == 4


def test_a_fix_round_switching_to_feature_extraction_drops_the_fine_tuning_recipe():
    kb = get_kb()
    plan = _ft_plan()
    plan["hyperparameters"]["preprocessing"] = ["demojize"]
    fix = {"fix": "switch_to_feature_extraction", "description": "switch",
           "changes": [{"field": "technique", "from": "fine_tuning", "to": "feature_extraction"}]}
    new = apply_fix(as_plan(plan, kb), fix)
    assert new.technique_id == "feature_extraction"
    assert new.hyperparameters.preprocessing == ["demojize"]  # the data-level settings carry over
    assert set(DATA_LEVEL) >= {"preprocessing"}
    _assert_head_recipe(technique_hyper(kb, new, "feature_extraction", {}, 6))


def test_every_trained_technique_stops_early_by_default():
    kb = get_kb()
    patience = kb.threshold("early_stopping_patience")
    for tech in ("fine_tuning", "lora", "from_scratch"):
        assert technique_hyper(kb, _ft_plan(), tech, {}, 6, alone=False)["early_stopping_patience"] == patience
    plan = get_engine(kb).consult(normalize({**CASE, "compute": "cpu", "dataset_size": 6000}, kb)).to_dict()
    assert plan["hyperparameters"]["early_stopping_patience"] == patience
    assert plan["hyperparameters_why"]["early_stopping_patience"]["rule"] == "tuning.early_stopping"


def test_a_run_trains_the_head_with_its_own_recipe(tiny_bert, tmp_path, monkeypatch):
    """The whole path of a case study: execute() with FE beside fine-tuning and a shared --epochs."""
    import harness.training.techniques as techniques

    seen = {}
    real_head, real_transformer = techniques.run_head, techniques.run_transformer

    def head(*a, **kw):
        seen.setdefault("feature_extraction", a[8])
        return real_head(*a, **kw)

    def transformer(*a, **kw):
        seen.setdefault(kw["technique"], a[5])
        return real_transformer(*a, **kw)

    monkeypatch.setattr(techniques, "run_head", head)
    monkeypatch.setattr(techniques, "run_transformer", transformer)
    cfg = RunConfig(techniques=["fine_tuning", "feature_extraction"], seeds=2, model=tiny_bert,
                    out=str(tmp_path / "r"), builtin_size=90, max_length=32, overrides={"epochs": 1})
    rec = execute(_ft_plan(), cfg, get_kb())
    assert seen["fine_tuning"]["learning_rate"] == 5e-5 and seen["fine_tuning"]["epochs"] == 1
    _assert_head_recipe(seen["feature_extraction"])
    assert rec["config"]["hyperparameters"]["feature_extraction"]["probe"]
    assert all(r["extra"]["converged"] for r in rec["results"]["feature_extraction"])


def test_the_case_study_script_runs_feature_extraction_with_its_own_recipe():
    """bench/case_studies.py's comparisons pass --epochs to fine-tuning only."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import case_studies

    plan = case_studies.full_fine_tuning(as_plan(_ft_plan(), get_kb()), case_studies.GOOD_LR)
    fe = technique_hyper(get_kb(), plan, "feature_extraction", {"epochs": case_studies.EPOCHS}, 6, alone=False)
    _assert_head_recipe(fe)
