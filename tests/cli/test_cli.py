"""The command line (cli.py), tested with click's CliRunner on exit codes and exact
``Error:`` text, plus a cold-start check in a fresh interpreter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import cli
from cli import main
from rules.base import RULES

ROOT = Path(__file__).resolve().parents[2]
CONSULT = ["consult", "--task", "text_classification", "--dataset-size", "5000", "--no-input"]
# DESIGN.md, "Plan (output of consult --format json)"
PLAN_KEYS = {"schema_version", "scenario", "architecture", "candidates", "rejected", "approach", "technique",
             "hyperparameters", "risks", "diagnoses", "evaluation", "trace", "model", "size_class", "recipes"}
HYPER_KEYS = {"learning_rate", "frozen_layers", "unfreeze", "weight_decay", "dropout", "augmentation",
              "epochs", "lora", "batch_size", "warmup_ratio", "max_grad_norm", "early_stopping_patience",
              "discriminative_lr_decay", "l2_sp"}


def invoke(args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def as_json(result) -> dict:
    ok(result)
    return json.loads(result.stdout)


def one_error_line(result) -> str:
    """The exit status is 2 and the output is exactly one ``Error:`` line, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


# --------------------------------------------------------------------------
# consult: output formats
# --------------------------------------------------------------------------


def test_consult_text_names_candidates_approach_and_technique():
    out = ok(invoke(CONSULT)).stdout
    assert "Candidates (best first):" in out
    assert "BERT-base" in out and "DistilBERT-base" in out
    assert "Approach:  Transfer learning" in out
    assert "Technique: Fine-tuning" in out
    assert "Rejected:" in out and "GPT-4" in out
    assert "Rule trace" not in out


def test_consult_json_is_the_plan_contract_and_nothing_else():
    result = invoke([*CONSULT, "--format", "json"])
    plan = as_json(result)  # the whole of stdout parses
    assert plan["schema_version"] == 2
    assert PLAN_KEYS <= set(plan)
    assert plan["scenario"]["task"] == "text_classification" and plan["scenario"]["dataset_size"] == 5000
    assert plan["architecture"]["family"] == "nlp_transformer"
    assert plan["candidates"]
    for c in plan["candidates"]:
        assert {"model", "family", "params", "speed", "why"} <= set(c)
        assert c["why"]["rule"] in RULES and c["why"]["knowledge"]
    assert plan["rejected"]
    for r in plan["rejected"]:
        assert {"model", "reasons"} <= set(r) and r["reasons"]
    assert plan["approach"]["choice"] == "transfer"
    assert plan["technique"]["choice"] == "fine_tuning"
    assert HYPER_KEYS <= set(plan["hyperparameters"])
    for r in plan["risks"]:
        assert {"pitfall", "likelihood", "mitigations"} <= set(r)
    assert plan["diagnoses"] == []
    assert {"seeds", "alpha", "probes"} <= set(plan["evaluation"])
    assert plan["trace"] and all({"rule", "matched", "concluded"} <= set(t) for t in plan["trace"])


def test_consult_yaml_is_the_same_plan():
    as_yaml = yaml.safe_load(ok(invoke([*CONSULT, "--format", "yaml"])).stdout)
    plan = as_json(invoke([*CONSULT, "--format", "json"]))
    assert as_yaml == plan


def test_explain_prints_the_trace():
    plan = as_json(invoke([*CONSULT, "--format", "json"]))
    out = ok(invoke([*CONSULT, "--explain"])).stdout
    assert "Rule trace (how):" in out
    for t in plan["trace"]:
        assert t["rule"] in out
    assert "matched:" in out and "concluded:" in out
    explained = as_json(invoke([*CONSULT, "--format", "json", "--explain"]))
    assert explained["explain"] == explained["trace"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_output_file_is_a_plan_that_scenario_reads_back(tmp_path, suffix):
    out = tmp_path / "sub" / f"plan{suffix}"
    result = ok(invoke([*CONSULT, "--domain-similarity", "low", "--symptom", "loss_nan", "-o", out]))
    assert f"Plan written to {out}" in result.stdout
    written = json.loads(out.read_text()) if suffix == ".json" else yaml.safe_load(out.read_text())
    assert written["schema_version"] == 2 and written["scenario"]["domain_similarity"] == "low"
    again = as_json(invoke(["consult", "--scenario", out, "--no-input", "--format", "json"]))
    assert again["scenario"] == written["scenario"]
    assert {k: v for k, v in again.items() if k != "trace"} == {k: v for k, v in written.items() if k != "trace"}
    assert not list(out.parent.glob(".*tmp*"))  # written atomically, no leftovers


def test_output_file_with_json_format_keeps_stdout_pure(tmp_path):
    """-o: the plan goes to the file and stdout gets one line, still JSON with --format json."""
    out = tmp_path / "plan.json"
    result = invoke([*CONSULT, "--format", "json", "-o", out])
    plan = json.loads(out.read_text())
    summary = as_json(result)
    assert result.output.count("\n") == 1
    assert summary == {"written": str(out), "technique": plan["technique"]["choice"], "model": plan["model"]["id"],
                       "diagnoses": [d["pitfall"] for d in plan["diagnoses"]]}


def test_output_file_prints_a_one_line_summary_not_the_plan(tmp_path):
    out = tmp_path / "plan.json"
    result = invoke([*CONSULT, "-o", out])
    assert result.exit_code == 0 and result.output.count("\n") == 1
    assert result.output.startswith(f"Plan written to {out}: ") and "Candidates" not in result.output


# --------------------------------------------------------------------------
# consult: scenario files and flags
# --------------------------------------------------------------------------


SCENARIO_YAML = """\
# the course's case study
name: reviews
task: text_classification
dataset_size: 3000
num_classes: 3
domain_similarity: low
compute: cpu
source_domain: [wikipedia, news]
target_domain: customer reviews, informal
"""


def test_scenario_file_yaml(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO_YAML)
    plan = as_json(invoke(["consult", "--scenario", f, "--no-input", "--format", "json"]))
    sc = plan["scenario"]
    assert (sc["dataset_size"], sc["num_classes"], sc["compute"], sc["name"]) == (3000, 3, "cpu", "reviews")
    assert sc["target_domain"] == ["customer reviews", "informal"]
    assert plan["technique"]["choice"] == "lora"


def test_scenario_file_json(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"task": "image_classification", "dataset_size": 500, "deployment": "mobile",
                             "latency_ms": 30}, indent="\t"))
    plan = as_json(invoke(["consult", "--scenario", f, "--no-input", "--format", "json"]))
    assert plan["scenario"]["deployment"] == "mobile" and plan["technique"]["choice"] == "feature_extraction"
    assert plan["criteria"][0]["name"] == "model size and inference latency"


def test_flags_override_file_fields(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO_YAML)
    plan = as_json(invoke(["consult", "--scenario", f, "--dataset-size", "50000", "--compute", "datacenter_gpu",
                           "--no-input", "--format", "json"]))
    sc = plan["scenario"]
    assert (sc["dataset_size"], sc["compute"], sc["num_classes"]) == (50000, "datacenter_gpu", 3)
    assert plan["technique"]["choice"] == "fine_tuning"


def test_free_text_symptom_in_a_scenario_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO_YAML + "symptoms: [\"the model struggles with slang and informal language\"]\n")
    plan = as_json(invoke(["consult", "--scenario", f, "--no-input", "--format", "json"]))
    assert plan["scenario"]["symptoms"] == ["slang_informal_errors"]
    assert plan["diagnoses"][0]["pitfall"] == "negative_transfer"


# --------------------------------------------------------------------------
# consult: symptoms
# --------------------------------------------------------------------------


def test_symptom_by_id():
    plan = as_json(invoke([*CONSULT, "--format", "json", "--symptom", "loss_nan"]))
    assert plan["scenario"]["symptoms"] == ["loss_nan"]
    assert plan["diagnoses"][0]["pitfall"] == "divergence"


def test_symptom_by_free_text_is_echoed_as_the_matched_id():
    text = "customer reviews contain emoji-based sentiment that the model struggles with"
    plan = as_json(invoke([*CONSULT, "--format", "json", "--symptom", text]))
    assert plan["scenario"]["symptoms"] == ["emoji_sentiment_missed"]
    (d,) = plan["diagnoses"]
    assert d["pitfall"] == "domain_shift"
    assert [e["symptom"] for e in d["evidence"]] == ["emoji_sentiment_missed"]
    out = ok(invoke([*CONSULT, "--symptom", text])).stdout
    assert "evidence: emoji_sentiment_missed" in out and "Diagnoses:" in out


def test_several_symptoms():
    plan = as_json(invoke([*CONSULT, "--format", "json", "--symptom", "loss_nan", "--symptom", "val_loss_rising"]))
    assert {d["pitfall"] for d in plan["diagnoses"]} == {"divergence", "overfitting"}


def test_unmatched_symptom_text_is_refused():
    line = one_error_line(invoke([*CONSULT, "--symptom", "xyzzy plugh"]))
    assert "--symptom" in line and "'xyzzy plugh'" in line and "names no symptom" in line


def test_symptom_flag_adds_to_a_single_symptom_in_the_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("task: text_classification\ndataset_size: 5000\nsymptoms: loss_nan\n")
    alone = as_json(invoke(["consult", "--scenario", f, "--no-input", "--format", "json"]))
    assert alone["scenario"]["symptoms"] == ["loss_nan"]
    plan = as_json(invoke(["consult", "--scenario", f, "--symptom", "val_loss_rising", "--no-input",
                           "--format", "json"]))
    assert plan["scenario"]["symptoms"] == ["loss_nan", "val_loss_rising"]


# --------------------------------------------------------------------------
# consult: bad input -> exit 2, one line naming where, the field, what was expected
# --------------------------------------------------------------------------


FILES = {
    "bad.yaml": "task: [text_classification\ndataset_size: 10\n",
    "bad.json": '{"task": "text_classification",\n "dataset_size": 10]}\n',
    "unknown_field.yaml": "task: text_classification\ndataset_size: 10\nfoo: 1\n",
    "list.yaml": "- task: text_classification\n- dataset_size: 10\n",
    "bad_compute.yaml": "task: text_classification\ndataset_size: 10\ncompute: gpu\n",
    "bad_size.json": '{"task": "text_classification",\n "dataset_size": -1}\n',
    "empty.yaml": "",
    "typo.yaml": "task: text_classification\ndataset_sise: 10\n",
}

BAD = [
    # (id, args, substrings of the one Error line)
    ("malformed-yaml", ["--scenario", "{d}/bad.yaml"], ["bad.yaml:", "malformed YAML"]),
    ("malformed-json", ["--scenario", "{d}/bad.json"], ["bad.json:2", "malformed"]),
    ("missing-file", ["--scenario", "{d}/missing.yaml"], ["missing.yaml", "no such file"]),
    ("unknown-task", ["--task", "text_clasification", "--dataset-size", "10"],
     ["--task", "'task'", "must be one of", "Did you mean 'text_classification'"]),
    ("unknown-enum", ["--task", "text_classification", "--dataset-size", "10", "--compute", "gpu"],
     ["--compute", "'compute'", "must be one of", "consumer_gpu", "Did you mean"]),
    ("negative-size", ["--task", "text_classification", "--dataset-size", "-3"],
     ["--dataset-size", "'dataset_size'", "positive integer", "'-3'"]),
    ("non-numeric-size", ["--task", "text_classification", "--dataset-size", "lots"],
     ["--dataset-size", "'dataset_size'", "positive integer", "'lots'"]),
    ("fractional-size", ["--task", "text_classification", "--dataset-size", "10.5"],
     ["--dataset-size", "positive integer"]),
    ("one-class", ["--task", "text_classification", "--dataset-size", "10", "--num-classes", "1"],
     ["--num-classes", "'num_classes'", "at least 2"]),
    ("zero-memory", ["--task", "text_classification", "--dataset-size", "10", "--gpu-memory-gb", "0"],
     ["--gpu-memory-gb", "'gpu_memory_gb'", "positive number"]),
    ("latency-text", ["--task", "text_classification", "--dataset-size", "10", "--latency-ms", "fast"],
     ["--latency-ms", "'latency_ms'", "'fast'"]),
    ("unknown-field", ["--scenario", "{d}/unknown_field.yaml"], ["unknown_field.yaml:3", "'foo'",
                                                                 "not a scenario field"]),
    ("typo-field", ["--scenario", "{d}/typo.yaml"], ["typo.yaml:2", "'dataset_sise'", "Did you mean 'dataset_size'"]),
    ("list-file", ["--scenario", "{d}/list.yaml"], ["list.yaml", "mapping", "list"]),
    ("empty-file", ["--scenario", "{d}/empty.yaml"], ["empty.yaml", "mapping"]),
    ("file-enum", ["--scenario", "{d}/bad_compute.yaml"], ["bad_compute.yaml:3", "'compute'", "must be one of"]),
    ("json-line", ["--scenario", "{d}/bad_size.json"], ["bad_size.json:2", "'dataset_size'", "positive integer"]),
    ("modality-mismatch", ["--task", "text_classification", "--dataset-size", "10", "--scenario",
                           "{d}/modality.yaml"], ["'modality'", "'text'"]),
    ("directory", ["--scenario", "{d}"], ["is a directory"]),
    ("binary-file", ["--scenario", "{d}/binary.yaml"], ["binary.yaml", "UTF-8"]),
    ("missing-task", ["--dataset-size", "10"], ["'task'", "required"]),
    ("missing-size", ["--task", "text_classification"], ["'dataset_size'", "required"]),
]


@pytest.fixture
def files(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "modality.yaml").write_text("modality: image\n", encoding="utf-8")
    (tmp_path / "binary.yaml").write_bytes(b"task: \xff\xfe\x00text\n")
    return tmp_path


@pytest.mark.parametrize("args, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_error_line_with_exit_2(files, args, words):
    args = [a.format(d=files) for a in args]
    line = one_error_line(invoke(["consult", *args, "--no-input"]))
    for w in words:
        assert w in line, line


def test_negative_latency_says_what_was_expected():
    line = one_error_line(invoke([*CONSULT, "--latency-ms", "-5"]))
    assert "'latency_ms'" in line
    assert re.search(r"non-negative|at least 0|>= ?0|zero or (more|greater)|positive", line), line


# --------------------------------------------------------------------------
# consult: prompts (only on a terminal)
# --------------------------------------------------------------------------


class _TTYStdin:
    def __init__(self, real):
        self._real = real

    def isatty(self):
        return True

    def __getattr__(self, name):
        return getattr(self._real, name)


class _TTYSys:
    """Stands in for ``cli.sys``: sys itself, except that stdin says it is a terminal."""

    def __getattr__(self, name):
        return getattr(sys, name)

    @property
    def stdin(self):
        return _TTYStdin(sys.stdin)


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(cli, "sys", _TTYSys())


def test_prompts_ask_the_suitability_questions_on_a_terminal(terminal):
    # task, task match, data similarity, size, compute, deployment, latency
    answers = "image_classification\n\n\n800\n\nmobile\n30\n"
    result = ok(invoke(["consult"], input=answers))
    assert "What is the target task?" in result.output
    assert "How large is the target dataset" in result.output
    out = result.stdout
    assert "Transfer-learning plan: image classification" in out
    assert "800 labeled examples" in out and "deployment mobile, 30 ms budget" in out
    assert "Technique: Feature extraction" in out
    assert "task similarity related" in out  # the default answer


def test_prompts_only_for_missing_fields(terminal):
    result = ok(invoke(["consult", "--task", "text_classification", "--dataset-size", "5000",
                        "--compute", "cpu"], input="\n\n\n\n\n"))
    assert "What is the target task?" not in result.output
    assert "How large is the target dataset" not in result.output
    assert "What are the compute resources" not in result.output
    assert "Technique: LoRA" in result.stdout


def test_prompt_refuses_an_unknown_choice_and_asks_again(terminal):
    answers = "text_classification\n\n\n5000\n\ngpu\nconsumer_gpu\n\n\n"
    result = ok(invoke(["consult"], input=answers))
    assert "gpu" in result.output and "Technique: Fine-tuning" in result.stdout
    assert result.output.count("compute (") >= 2


def test_a_bad_prompted_value_is_asked_again_and_no_answer_is_lost(terminal):
    # the answers before and after the bad ones are all kept: one plan, exit 0
    answers = "text_classification\ndifferent\nlow\nlots\n-5\n2,500\nno\ncpu\nmobile\n40\n"
    result = ok(invoke(["consult"], input=answers))
    assert result.output.count("How large is the target dataset") == 1
    assert "Error: The 'dataset_size' field of your answer must be a positive integer. Got 'lots' instead." \
        in result.output
    assert "Got '-5' instead." in result.output
    out = result.stdout
    assert "2500 labeled examples" in out and "task similarity different" in out
    assert "data similarity low" in out and "compute cpu" in out and "40 ms budget" in out
    assert "keep source abilities: no" in out


@pytest.mark.parametrize("spelling", ["image classification", "Image-Classification", " IMAGE_classification "])
def test_the_prompt_takes_the_spellings_the_flag_takes(terminal, spelling):
    by_prompt = ok(invoke(["consult"], input=f"{spelling}\n\n\n800\n\n\n\n")).stdout
    by_flag = ok(invoke(["consult", "--no-input", "--task", spelling, "--dataset-size", "800"])).stdout
    assert "Transfer-learning plan: image classification" in by_prompt
    assert by_prompt == by_flag


def test_an_unknown_task_at_the_prompt_is_asked_again_with_the_known_ones(terminal):
    result = ok(invoke(["consult"], input="image clasification\nimage classification\n\n\n800\n\n\n\n"))
    assert "Error: The 'task' field of your answer must be one of" in result.output
    assert "Did you mean 'image_classification'" in result.output
    assert result.output.count("What is the target task?") == 1


def test_only_questions_that_can_change_the_plan_are_asked(terminal):
    # 800 examples: feature extraction never changes the backbone, so what it must keep is not asked;
    # batch deployment has no latency budget to ask for
    result = ok(invoke(["consult", "--task", "text_classification", "--deployment", "batch"],
                       input="\n\n800\n\n"))
    assert "keep its original abilities" not in result.output
    assert "latency budget" not in result.output
    result = ok(invoke(["consult", "--task", "text_classification", "--deployment", "batch"],
                       input="\n\n5000\nyes\n\n"))
    assert "keep its original abilities" in result.output
    assert "keep source abilities: yes" in result.stdout


def test_defaults_taken_at_the_prompt_are_listed_as_assumed(terminal):
    result = ok(invoke(["consult"], input="text_classification\n\nlow\n5000\n\ncpu\n\n\n"))
    line = next(x for x in result.stdout.splitlines() if x.startswith("Assumed"))
    assert "task_similarity = related" in line and "retain_source = unknown" in line
    assert "deployment = server" in line and "domain_similarity" not in line and "compute =" not in line
    assert "tlexpert consult --task text_classification --domain-similarity low --dataset-size 5000 " \
           "--compute cpu" in result.output


def test_answers_so_far_are_printed_when_the_input_ends(terminal):
    result = invoke(["consult"], input="text_classification\ndifferent\nlow\n2500\n")
    assert result.exit_code == 1 and "Traceback" not in result.output  # click's Abort
    assert ("Answers so far (give them as flags to start from here): --task text_classification "
            "--task-similarity different --domain-similarity low --dataset-size 2500") in result.output


def test_explain_prints_the_plan_check(terminal):
    result = ok(invoke(["consult", "--no-input", "--task", "text_classification", "--dataset-size", "5000",
                        "--domain-similarity", "low", "--explain"]))
    assert "Plan check: no contradiction found" in result.stdout
    data = json.loads(ok(invoke(["consult", "--task", "text_classification", "--dataset-size", "5000",
                                 "--format", "json", "--explain"])).stdout)
    assert data["violations"] == []


@pytest.mark.parametrize("extra", [["--no-input"], ["--format", "json"]])
def test_no_prompts_with_no_input_or_machine_output(terminal, extra):
    result = invoke(["consult", "--task", "text_classification", *extra], input="5000\n" * 8)
    assert "How large is the target dataset" not in result.output
    one_error_line(result)


def test_no_prompts_without_a_terminal():
    result = invoke(["consult", "--task", "text_classification"], input="5000\n" * 8)
    assert "How large" not in result.output
    one_error_line(result)


# --------------------------------------------------------------------------
# models, rules, symptoms
# --------------------------------------------------------------------------


def test_models_filtered_by_task_and_size(kb):
    out = ok(invoke(["models", "--task", "image_classification", "--max-params", "30M"])).stdout
    small = {m.id for m in kb.models.values() if "image_classification" in m.tasks and m.params <= 30e6}
    large = {m.id for m in kb.models.values() if m.params > 30e6}
    assert small and all(re.search(rf"^{re.escape(m)}\s", out, re.M) for m in small)
    assert not any(re.search(rf"^{re.escape(m)}\s", out, re.M) for m in large)
    rows = as_json(invoke(["models", "--task", "image_classification", "--max-params", "30M", "--format", "json"]))
    assert {r["id"] for r in rows} == small


def test_models_marks_the_ones_built_here_from_local_weights(kb):
    out = ok(invoke(["models", "--task", "image_classification"])).stdout
    assert re.search(r"^resnet-18\s.*\s--weights\s", out, re.M)  # built by torchvision, weights from --weights
    assert re.search(r"^clip-vit-b-32\s.*\sno\s", out, re.M)  # no builder: a local folder is needed
    rows = {r["id"]: r for r in as_json(invoke(["models", "--format", "json"]))}
    assert rows["resnet-18"]["builder"] == "torchvision:resnet18" and rows["all-MiniLM-L6-v2"]["builder"] is None


def test_models_lists_the_whole_catalog(kb):
    rows = as_json(invoke(["models", "--format", "json"]))
    assert {r["id"] for r in rows} == set(kb.models)
    offline = as_json(invoke(["models", "--offline", "--format", "json"]))
    assert {r["id"] for r in offline} == {m.id for m in kb.models.values() if m.offline}


@pytest.mark.parametrize("args, words", [
    (["--task", "nope"], ["--task", "'task'", "must be one of"]),
    (["--family", "rnn"], ["--family", "'family'"]),
    (["--max-params", "lots"], ["--max-params", "30M"]),
    (["--max-params", "-5M"], ["--max-params", "positive"]),
])
def test_models_bad_filters(args, words):
    line = one_error_line(invoke(["models", *args]))
    for w in words:
        assert w in line, line


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_models_non_finite_max_params_is_an_error_line(value):
    one_error_line(invoke(["models", "--max-params", value]))


def test_rules_lists_every_rule_id():
    out = ok(invoke(["rules"])).stdout
    for rid in RULES:
        assert rid in out, rid
    rows = as_json(invoke(["rules", "--format", "json"]))
    assert {r["id"] for r in rows} == set(RULES)
    assert all(r["doc"] for r in rows)
    risk = as_json(invoke(["rules", "--topic", "risk", "--format", "json"]))
    assert {r["id"] for r in risk} == {r for r in RULES if r.startswith("risk.")}
    one_error_line(invoke(["rules", "--topic", "nope"]))


def test_symptoms_lists_ids(kb):
    out = ok(invoke(["symptoms"])).stdout
    for sid in kb.symptoms:
        assert sid in out
    rows = as_json(invoke(["symptoms", "--format", "json"]))
    assert {r["id"] for r in rows} == set(kb.symptoms)


def test_help_lists_the_commands():
    out = ok(invoke(["--help"])).stdout
    for cmd in ("consult", "models", "rules", "symptoms"):
        assert cmd in out


# --------------------------------------------------------------------------
# cold start: no heavy imports on the consult path
# --------------------------------------------------------------------------


HEAVY = "('torch','transformers','pandas','peft')"


@pytest.mark.parametrize("args", [
    ["consult", "--task", "text_classification", "--dataset-size", "100", "--format", "json", "--no-input"],
    ["--help"],
    ["models"],
    ["rules"],
], ids=["consult", "help", "models", "rules"])
def test_no_heavy_imports(args):
    code = (f"import sys, cli; cli.main({args!r}, standalone_mode=False); "
            f"print(sorted(m for m in {HEAVY} if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "TLEXPERT_KNOWLEDGE"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout[-500:]
