"""Contract tests over every knowledge entry, and knowledge overrides.

Every entry loads, cites a source that exists, and every id it names exists;
the catalog keeps the invariants the rules rely on; a team's override folder
changes the plan, and a bad one fails with the file and the line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from knowledge import KnowledgeError, get_kb, load
from knowledge.checks import REQUIRED_THRESHOLDS
from knowledge.loader import ENV_VAR, SECTIONS
from knowledge.schema import SPEED_ORDER, Pitfall
from rules.engine import TransferEngine
from rules.scenario import ENUMS, FIELDS, normalize

KB = get_kb()
ENTRIES = [(section, key) for section in SECTIONS for key in KB.sections[section]]

# DESIGN.md, "Pitfall ids"
DESIGN_PITFALLS = {"catastrophic_forgetting", "negative_transfer", "domain_shift", "overfitting",
                   "underfitting", "divergence", "failed_run"}
# common problems outside transfer learning proper (scope: practical), diagnosed from descriptions
PRACTICAL_PITFALLS = {"out_of_memory", "slow_training", "label_noise", "class_imbalance", "data_leakage", "stopped_early"}

# The slide titles of the course "Evaluating and Optimizing Transfer Learning" that the
# knowledge base cites (the closing exercise slide carries no knowledge).
COURSE_SLIDES = [
    "Transfer Learning Concepts - Objectives",
    "Source Model Selection Factor 1: Architecture and Task Fit",
    "Evaluating Pre-Trained Model Suitability",
    "A Note on Model Size",
    "Quick Quiz!",
    "The Big Decision: Full Training vs Transfer",
    "Comparing Specific TL Techniques",
    "Common Pitfalls # 1: Catastrophic Forgetting",
    "Common Pitfalls # 2: Negative Transfer",
    "Common Pitfalls # 3: Domain Shift",
    "The Role of Regularization",
    "Case Study: Adapting a Sentiment Analysis Model",
]


def _id(entry):
    section, key = entry
    return f"{section}:{key}"


# --------------------------------------------------------------------------
# every entry
# --------------------------------------------------------------------------


def test_knowledge_loads_every_section():
    kb = load()
    assert set(kb.sections) == set(SECTIONS)
    assert all(kb.sections[s] for s in SECTIONS), "a section is empty"
    assert get_kb() is get_kb()  # loaded once


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_entry_is_typed_and_keyed_by_its_id(entry):
    section, key = entry
    obj = KB.sections[section][key]
    assert isinstance(obj, SECTIONS[section])
    assert str(getattr(obj.id, "value", obj.id)) == key
    assert KB.get(section, key) is obj


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e[0] != "sources"], ids=_id)
def test_entry_cites_an_existing_source(entry):
    section, key = entry
    obj = KB.sections[section][key]
    assert obj.sources, f"{section}:{key} cites no source"
    missing = [s for s in obj.sources if s not in KB.sources]
    assert not missing, f"{section}:{key} cites unknown sources {missing}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e[0] == "sources"], ids=_id)
def test_source_has_a_title_and_slides_are_course_slides(entry):
    src = KB.sources[entry[1]]
    assert src.title.strip()
    if src.kind.value == "slide":
        assert src.title in COURSE_SLIDES, f"slide source {src.id} titled {src.title!r} is not a course slide"
    else:
        assert src.reference.strip() or src.url.strip(), f"{src.id} says nothing about where to find it"


@pytest.mark.parametrize("title", COURSE_SLIDES)
def test_course_slides_are_among_sources(title):
    assert any(s.kind.value == "slide" and s.title == title for s in KB.sources.values())


@pytest.mark.parametrize("pitfall", sorted(KB.pitfalls), ids=str)
def test_pitfall_fixes_and_symptoms_exist(pitfall):
    p = KB.pitfalls[pitfall]
    assert p.fixes and all(f in KB.fixes for f in p.fixes), p.fixes
    assert len(p.symptoms) >= 1, f"{pitfall} lists no symptom"
    for sid in p.symptoms:
        assert sid in KB.symptoms, sid
        assert pitfall in KB.symptoms[sid].indicates, f"{sid} is listed under {pitfall} but does not indicate it"


@pytest.mark.parametrize("symptom", sorted(KB.symptoms), ids=str)
def test_symptom_indicates_existing_pitfalls_and_fixes(symptom):
    s = KB.symptoms[symptom]
    assert s.indicates, f"{symptom} indicates nothing"
    for pit, weight in s.indicates.items():
        assert pit in KB.pitfalls, pit
        assert 0 < weight <= 1
    assert all(f in KB.fixes for f in s.preferred_fixes), s.preferred_fixes
    assert any(symptom in p.symptoms for p in KB.pitfalls.values()), f"{symptom} is under no pitfall"
    assert s.severity in ("warning", "error")


@pytest.mark.parametrize("fix", sorted(KB.fixes), ids=str)
def test_fix_changes_and_techniques_exist(fix):
    f = KB.fixes[fix]
    assert f.changes
    assert all(t in KB.techniques for t in f.applies_to), f.applies_to
    for ch in f.changes:
        if ch.field == "technique":
            assert ch.value in KB.techniques


def test_every_fix_is_reachable_from_a_pitfall_or_symptom():
    named = {f for p in KB.pitfalls.values() for f in p.fixes}
    named |= {f for s in KB.symptoms.values() for f in s.preferred_fixes}
    assert not set(KB.fixes) - named, set(KB.fixes) - named


@pytest.mark.parametrize("model", sorted(KB.models), ids=str)
def test_model_tasks_family_and_quality(model):
    m = KB.models[model]
    assert m.tasks and all(t in KB.tasks for t in m.tasks), m.tasks
    assert m.family.value in KB.sections["architectures"]
    assert m.params > 0 and m.layers >= 0
    for task, q in m.quality.items():
        assert task in m.tasks, f"{model} has a quality score for {task}, which it does not do"
        assert q.source in KB.sources and isinstance(q.value, (int, float)) and q.metric
    assert not m.offline or m.open_weights


@pytest.mark.parametrize("task", sorted(KB.tasks), ids=str)
def test_every_task_has_an_architecture_and_a_model(task):
    t = KB.tasks[task]
    assert t.family.value in KB.sections["architectures"]
    assert any(task in m.tasks for m in KB.models.values()), f"no model for {task}"


def test_architectures_best_for_existing_tasks():
    for a in KB.sections["architectures"].values():
        assert all(t in KB.tasks for t in a.best_for), a.id


def test_pitfall_ids_equal_the_design_list():
    assert {k for k, p in KB.pitfalls.items() if p.scope == "transfer"} == DESIGN_PITFALLS
    assert {k for k, p in KB.pitfalls.items() if p.scope == "practical"} == PRACTICAL_PITFALLS
    assert {p.value for p in Pitfall} == DESIGN_PITFALLS | PRACTICAL_PITFALLS


def test_every_pitfall_is_reported_as_its_own_symptoms_and_distinctions_name_real_answers():
    for pid, p in KB.pitfalls.items():
        assert p.reported_as and set(p.reported_as) <= set(p.symptoms), pid
        assert all(pid in KB.symptoms[s].indicates for s in p.reported_as), pid
    for did, d in KB.sections["distinctions"].items():
        pits = {x.value for x in d.pitfalls}
        assert len(d.answers) >= 2 and d.question.endswith("?"), did
        for a in d.answers:
            assert any(set(KB.symptoms[s].indicates) & pits for s in a.symptoms), (did, a)


def test_required_thresholds_are_present():
    assert set(REQUIRED_THRESHOLDS) <= set(KB.sections["thresholds"])


def test_questions_fill_scenario_fields_with_the_contract_choices():
    for q in KB.sections["questions"].values():
        assert q.field in FIELDS, q.id
        if q.choices:
            assert q.choices == ENUMS[q.field], q.id


def test_techniques_core_set():
    core = {t.id for t in KB.techniques.values() if t.kind == "core"}
    assert {"feature_extraction", "fine_tuning", "lora"} <= core
    for t in KB.techniques.values():
        assert t.approach in KB.sections["approaches"]


# --------------------------------------------------------------------------
# the catalog
# --------------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(KB.tasks), ids=str)
def test_within_a_task_a_faster_class_never_costs_more(task):
    """Speed classes are derived from numbers: within a task, a faster class never needs more compute
    per input on the reference device (text models compared at the same input kind)."""
    models = [m for m in KB.models.values() if task in m.tasks and m.tasks[0] == task]
    bad = [(fast.id, slow.id) for fast in models for slow in models if fast.per == slow.per
           and SPEED_ORDER[fast.speed.value] < SPEED_ORDER[slow.speed.value] and fast.gflops > slow.gflops]
    assert not bad, bad


@pytest.mark.parametrize("model, params, speed", [
    ("resnet-18", 11e6, "fast"),
    ("vit-large", 307e6, "medium"),
    ("mistral-large-2", 123e9, "slow"),
    ("gpt-4", 1.8e12, "very_slow"),
])
def test_course_model_size_table(model, params, speed):
    m = KB.find_model(model)
    assert m is not None, model
    assert abs(m.params - params) / params < 0.07, (m.params, params)
    assert m.speed.value == speed


@pytest.mark.parametrize("name", ["mobilenet-v3-small", "mobilenet", "efficientnet-b0", "distilbert",
                                  "all-MiniLM-L6-v2", "bert", "ResNet-18", "vit_l_16"])
def test_named_models_are_present(name):
    m = KB.find_model(name) or next((x for x in KB.models.values() if x.id.startswith(name)), None)
    assert m is not None, name


def test_minilm_loads_offline():
    m = KB.find_model("all-MiniLM-L6-v2")
    assert m.offline is True and "text_classification" in m.tasks
    assert [x.id for x in KB.models.values() if x.offline]


def test_gpt4_is_closed():
    assert KB.models["gpt-4"].open_weights is False


def test_lookup_miss_names_the_nearest_ids():
    with pytest.raises(KnowledgeError, match="resnet-18"):
        KB.get("models", "resnet-17")


# --------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------


SCENARIO = dict(task="text_classification", dataset_size=10)


def write(tmp_path: Path, text: str, name: str = "team.yaml") -> Path:
    d = tmp_path / "knowledge"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text, encoding="utf-8")
    return d


def plan_with(kb, **fields):
    return TransferEngine(kb).consult(normalize({**SCENARIO, **fields}, kb)).to_dict()


def test_threshold_override_changes_the_technique(tmp_path):
    assert plan_with(KB)["technique"]["choice"] == "feature_extraction"
    d = write(tmp_path, "thresholds: [{id: dataset_small_max, value: 5}]\n")
    kb = load([d])
    assert kb.threshold("dataset_small_max") == 5
    th = kb.sections["thresholds"]["dataset_small_max"]
    assert th.sources == KB.sections["thresholds"]["dataset_small_max"].sources  # merged, not replaced
    assert plan_with(kb)["technique"]["choice"] == "fine_tuning"
    assert KB.threshold("dataset_small_max") == 1000  # the built-in base is untouched


def test_a_new_model_is_added_and_ranked(tmp_path):
    d = write(tmp_path, """\
models:
  - id: team-tiny-cnn
    name: Team tiny CNN
    family: cnn
    tasks: [image_classification]
    params: 1000000
    gflops: 0.05
    layers: 8
    best_use: "Our own backbone"
    quality: {image_classification: {metric: "ImageNet-1K top-1 %", value: 99.0, source: tlexpert-heuristic}}
    sources: [tlexpert-heuristic]
""")
    kb = load([d])
    assert "team-tiny-cnn" in kb.models and len(kb.models) == len(KB.models) + 1
    plan = plan_with(kb, task="image_classification", dataset_size=5000, deployment="mobile")
    assert plan["candidates"][0]["model"] == "team-tiny-cnn"


def test_a_new_task_is_added_and_consulted(tmp_path):
    d = write(tmp_path, """\
tasks:
  - {id: speech_intent, modality: text, family: nlp_transformer, description: "Intent of a transcript",
     sources: [tlexpert-heuristic]}
models:
  - id: distilbert-base
    tasks: [text_classification, question_answering, speech_intent]
""")
    kb = load([d])
    plan = plan_with(kb, task="speech_intent", dataset_size=5000)
    assert plan["architecture"]["family"] == "nlp_transformer"
    assert [c["model"] for c in plan["candidates"]] == ["distilbert-base"]


def test_image_classifiers_with_open_weights_name_their_builder():
    """Every open-weights image classifier in the catalog can be built by torchvision or timm."""
    for m in KB.models.values():
        if m.tasks == ["image_classification"] and m.open_weights:
            assert m.builder.split(":")[0] in ("torchvision", "timm"), m.id
    assert KB.find_model("resnet18").builder == "torchvision:resnet18"


def test_a_model_field_override_keeps_the_other_fields(tmp_path):
    d = write(tmp_path, "models:\n  - id: resnet-18\n    best_use: \"Our favourite\"\n")
    m = load([d]).models["resnet-18"]
    assert m.best_use == "Our favourite" and m.params == KB.models["resnet-18"].params


@pytest.mark.parametrize("text, line, words", [
    ("thresholds:\n  - id: dataset_small_max\n    valu: 5\n", 3, ["'valu'", "Did you mean 'value'"]),
    ("models:\n  - id: resnet-18\n    params: many\n", 3, ["'params'", "integer", "'many'"]),
    ("models:\n  - id: resnet-18\n    speed: fast\n", 3, ["'speed'", "derived", "'gflops'"]),
    ("models:\n  - id: resnet-18\n    params: -3\n", 3, ["'params'", "positive integer", "-3"]),
    ("models:\n  - id: resnet-18\n    builder: resnet18\n", 3, ["'builder'", "torchvision:<architecture>"]),
    ("models:\n  - id: resnet-18\n    tasks: [image_classification, nope]\n", 3, ["'tasks'", "'nope'"]),
    ("modelz:\n  - id: resnet-18\n", 1, ["'section'", "Did you mean 'models'"]),
    ("models:\n  - id: x\n    params: [\n", 4, ["malformed YAML"]),
    ("fixes:\n  - id: lower_learning_rate\n    changes: [{field: learning_rate, op: halve}]\n", 3,
     ["'op'", "'halve'"]),
    ("symptoms:\n  - id: loss_nan\n    indicates: {exploding: 0.5}\n", 3, ["'indicates'", "'exploding'"]),
])
def test_a_bad_override_names_the_file_and_line(tmp_path, text, line, words):
    d = write(tmp_path, text)
    with pytest.raises(KnowledgeError) as info:
        load([d])
    msg = str(info.value)
    assert f"team.yaml:{line}" in msg, msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def test_a_new_entry_missing_a_required_field_names_the_file(tmp_path):
    d = write(tmp_path, "models:\n  - id: brand-new\n    name: Brand new\n")
    with pytest.raises(KnowledgeError, match=r"team\.yaml:2.*'family'.*required|'family'.*team\.yaml:2"):
        load([d])


def test_an_override_that_is_not_a_mapping_names_the_file(tmp_path):
    d = write(tmp_path, "- thresholds\n")
    with pytest.raises(KnowledgeError, match="team.yaml"):
        load([d])


def test_a_missing_override_folder_is_an_error(tmp_path):
    with pytest.raises(KnowledgeError, match="no such knowledge directory"):
        load([tmp_path / "nope"])


def test_a_wrong_typed_threshold_override_is_refused_when_loaded(tmp_path):
    d = write(tmp_path, "thresholds:\n  - id: dataset_small_max\n    value: lots\n")
    with pytest.raises(KnowledgeError, match=r"team\.yaml:3"):
        kb = load([d])
        plan_with(kb)  # if loading let it through, at least the consultation must not crash


# --- through the command line and the environment


def _consult_json(args, env=None):
    from cli import main

    result = CliRunner().invoke(main, args, env=env)
    return result


def test_knowledge_option_overrides_a_threshold(tmp_path):
    d = write(tmp_path, "thresholds: [{id: dataset_small_max, value: 5}]\n")
    base = ["consult", "--task", "text_classification", "--dataset-size", "10", "--no-input", "--format", "json"]
    plain = _consult_json(base)
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["technique"]["choice"] == "feature_extraction"
    result = _consult_json(["--knowledge", str(d), *base])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["technique"]["choice"] == "fine_tuning"


def test_environment_variable_overrides_a_threshold(tmp_path, monkeypatch):
    d = write(tmp_path, "thresholds: [{id: dataset_small_max, value: 5}]\n")
    monkeypatch.delenv(ENV_VAR, raising=False)
    base = ["consult", "--task", "text_classification", "--dataset-size", "10", "--no-input", "--format", "json"]
    result = _consult_json(base, env={ENV_VAR: str(d)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["technique"]["choice"] == "fine_tuning"


def test_environment_variable_takes_several_folders(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "t.yaml").write_text("thresholds: [{id: dataset_small_max, value: 5}]\n", encoding="utf-8")
    (b / "t.yaml").write_text("thresholds: [{id: dataset_small_max, value: 7}]\n", encoding="utf-8")
    from knowledge.loader import extra_dirs

    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = os.pathsep.join([str(a), str(b)])
    try:
        dirs = extra_dirs([])
    finally:
        if old is None:
            del os.environ[ENV_VAR]
        else:
            os.environ[ENV_VAR] = old
    assert dirs == [a, b]
    assert load(dirs).threshold("dataset_small_max") == 7  # later folders win


@pytest.mark.parametrize("text, where", [
    ("thresholds:\n  - id: dataset_small_max\n    valu: 5\n", "team.yaml:3"),
    ("models:\n  - id: x\n    params: [\n", "team.yaml:4"),
    ("modelz: []\n", "team.yaml:1"),
])
def test_a_bad_knowledge_folder_on_the_command_line_is_one_error_line(tmp_path, text, where):
    d = write(tmp_path, text)
    result = _consult_json(["--knowledge", str(d), "consult", "--task", "text_classification",
                            "--dataset-size", "10", "--no-input"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and where in lines[0], result.output


def test_every_section_is_a_dataclass_keyed_by_id():
    for cls in SECTIONS.values():
        assert dataclasses.is_dataclass(cls) and "id" in {f.name for f in dataclasses.fields(cls)}


# --------------------------------------------------------------------------
# measured findings and throughput: each says how to measure it again
# --------------------------------------------------------------------------

FINDINGS = [(f"{section}:{key}", i) for section in ("techniques", "fixes")
            for key, entry in KB.sections[section].items() for i, _ in enumerate(entry.findings)]


def test_the_knowledge_base_states_measured_findings():
    assert len(FINDINGS) >= 8
    assert KB.techniques["feature_extraction"].findings and KB.fixes["switch_to_feature_extraction"].findings


@pytest.mark.parametrize("where,i", FINDINGS, ids=[f"{w}#{i}" for w, i in FINDINGS])
def test_every_finding_names_its_command_data_recipe_and_date(where, i):
    import datetime
    import re

    section, key = where.split(":")
    entry = KB.sections[section][key]
    f = entry.findings[i]
    assert re.search(r"bench/\S+\.py|tlexpert |-m cli ", f.command), f"{where}: {f.command!r} is not a command"
    script = re.search(r"bench/\S+\.py", f.command)
    if script:
        assert (Path(__file__).resolve().parents[2] / script.group(0)).exists(), f"{where}: no {script.group(0)}"
    assert re.search(r"\d", f.data), f"{where}: the data should say how much ({f.data!r})"
    assert len(f.recipe) > 20 and any(w in f.recipe for w in ("learning", "probe", "epoch", "rate")), \
        f"{where}: the recipe should name the hyperparameters ({f.recipe!r})"
    day = datetime.date.fromisoformat(f.measured)
    assert datetime.date(2026, 1, 1) <= day <= datetime.date.today()
    assert f.source in KB.sources and KB.sources[f.source].kind.value == "measured" and f.source in entry.sources


@pytest.mark.parametrize("tid", sorted(KB.sections["throughput"]), ids=str)
def test_throughput_names_how_and_when_it_was_measured(tid):
    import datetime

    t = KB.sections["throughput"][tid]
    assert "bench/" in t.command and t.examples_per_second > 0 and t.conditions.strip()
    assert datetime.date.fromisoformat(t.measured) <= datetime.date.today()
    assert any(KB.sources[s].kind.value == "measured" for s in t.sources)


@pytest.mark.parametrize("text,words", [
    ("findings:\n  - text: x\n    command: bench/x.py\n    data: one file\n    recipe: r\n"
     "    measured: yesterday\n    source: s\n    task: text_classification\n", ["'measured'", "a date like"]),
    ("findings:\n  - text: x\n    data: one file\n    recipe: r\n    measured: 2026-11-27\n    source: s\n"
     "    task: text_classification\n", ["'command'", "required"]),
    ("findings:\n  - text: x\n    command: bench/x.py\n    data: one file\n    recipe: r\n"
     "    measured: 2026-11-27\n    source: s\n", ["'task'", "required"]),
])
def test_a_finding_without_provenance_is_refused(tmp_path, text, words):
    body = "techniques:\n  - id: lora\n    " + text.replace("\n", "\n    ").rstrip() + "\n"
    (tmp_path / "t.yaml").write_text(body)
    with pytest.raises(KnowledgeError) as e:
        load([tmp_path])
    assert all(w in str(e.value) for w in words), str(e.value)
