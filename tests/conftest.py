"""Shared fixtures: the knowledge base, the engine, one-call consultations.

Rule tests assert on working memory (STYLE item 6): declare the scenario, run,
assert the concluded facts, and on failure dump the facts. ``facts_dump``
renders working memory for assert messages, and a report hook appends the
working memory of the last consultation to every failing test's report.
"""

from __future__ import annotations

import json
import os
import sys
import tracemalloc
from typing import Any, Callable

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/ruletools.py: the rule tests' shared scaffolding

from knowledge import get_kb
from rules.base import unfreeze
from rules.engine import get_engine
from rules.scenario import normalize
from rules.reader.symptoms import match_symptom


def _facts_dump(engine) -> str:
    """Working memory as text: one line per fact, ``ClassName {fields}``."""
    lines = []
    for f in engine.facts.values():
        fields = {k: unfreeze(v) for k, v in f.as_dict().items()}
        lines.append(f"  {type(f).__name__} {json.dumps(fields, default=str, sort_keys=True)}")
    return "working memory:\n" + "\n".join(lines)


def _matching(engine, cls, **fields) -> list:
    """Facts of class ``cls`` whose fields equal ``fields`` (plain Python values)."""
    out = []
    for f in engine.facts_of(cls):
        if all(k in f and unfreeze(f[k]) == v for k, v in fields.items()):
            out.append(f)
    return out


@pytest.fixture(scope="session")
def kb():
    """The built-in knowledge base (loaded once per process)."""
    return get_kb()


@pytest.fixture
def recipe(kb) -> Callable[..., dict]:
    """``recipe(technique, family="nlp_transformer", **changes)``: a full hyperparameter set, as a plan
    resolves it from the knowledge base, with ``changes`` (a partial ``lora`` dict is merged)."""
    from rules.tuning import recipe as kb_recipe

    def make(technique: str, family: str = "nlp_transformer", **changes) -> dict:
        values = {"augmentation": [], "preprocessing": [], "tokenizer_extra_tokens": None, "stages": [],
                  "head": None, "lora": None}
        values.update(kb_recipe(kb, technique, family, "medium", "all-MiniLM-L6-v2"))
        if "lora" in changes and values["lora"]:
            changes["lora"] = {**values["lora"], **changes["lora"]}
        unknown = set(changes) - set(values)
        assert not unknown, f"not a hyperparameter: {unknown}"
        return {**values, **changes}

    return make


@pytest.fixture
def plan_file(tmp_path) -> Callable[..., tuple]:
    """``plan_file(*consult_args)``: (the plan `tlexpert consult --format json` prints, its file)."""
    from click.testing import CliRunner

    from cli import main

    def make(*args: str) -> tuple[dict, Any]:
        base = ["consult", "--task", "text_classification", "--dataset-size", "90", "--num-classes", "3",
                "--compute", "cpu", "--no-input", "--format", "json"]
        r = CliRunner().invoke(main, [*base, *args])
        assert r.exit_code == 0, r.output
        plan = json.loads(r.stdout)
        path = tmp_path / "plan.json"
        path.write_text(json.dumps(plan))
        return plan, path

    return make


@pytest.fixture
def engine(kb):
    """The shared engine for the built-in knowledge base (``consult`` resets it)."""
    return get_engine(kb)


@pytest.fixture
def facts_dump() -> Callable[[Any], str]:
    """``facts_dump(engine)``: the working memory, for assert messages."""
    return _facts_dump


@pytest.fixture
def facts_matching() -> Callable[..., list]:
    """``facts_matching(engine, cls, **fields)``: facts of ``cls`` with those field values."""
    return _matching


@pytest.fixture
def consult(kb, request):
    """``consult(**fields) -> (plan, engine)``: normalize a scenario and consult.

    Free-text symptoms are resolved as the CLI resolves them. The engine is
    remembered so that a failing test's report shows its working memory.
    """

    def run(**fields):
        scenario = normalize(dict(fields), kb, symptom_matcher=lambda t, w: match_symptom(t, kb, w))
        eng = get_engine(kb)
        request.node._tl_engine = eng
        plan = eng.consult(scenario).to_dict()
        return plan, eng

    return run


@pytest.fixture
def run_without(kb, request):
    """``run_without(fields, *fact_classes) -> engine``: reset with the scenario,
    retract the given input facts (e.g. ``TaskFact``), run; no plan is built.

    For rules that fire for every valid scenario: their silent case is the one
    where the fact they need is absent from working memory.
    """

    def run(fields: dict, *classes):
        scenario = normalize(dict(fields), kb)
        eng = get_engine(kb)
        request.node._tl_engine = eng
        eng.reset(scenario=scenario, measured=[])
        for cls in classes:
            for f in eng.facts_of(cls):
                eng.retract(f)
        eng.run()
        return eng

    return run


def trace_rules(plan: dict) -> list[str]:
    return [t["rule"] for t in plan["trace"]]


@pytest.fixture
def fired() -> Callable[[dict], list[str]]:
    """``fired(plan)``: the rule ids in the plan's trace, in firing order."""
    return trace_rules


@pytest.fixture
def rule_fires(consult):
    """``rule_fires(rule, scenario, cls, **fields)``: the rule concludes such a fact and is in the trace."""

    def check(rule: str, scenario: dict, cls, **fields):
        plan, engine = consult(**scenario)
        concluded = [f for f in _matching(engine, cls, **fields) if f["rule"] == rule]
        assert concluded, f"{rule} did not conclude {cls.__name__}{fields}\n" + _facts_dump(engine)
        assert rule in trace_rules(plan)
        return plan, engine

    return check


@pytest.fixture
def rule_silent(consult):
    """``rule_silent(rule, scenario)``: the rule concludes nothing and is not in the trace."""

    def check(rule: str, scenario: dict):
        plan, engine = consult(**scenario)
        by_rule = [f for f in engine.facts.values() if f.get("rule") == rule]
        assert not by_rule, f"{rule} should stay silent\n" + _facts_dump(engine)
        assert rule not in trace_rules(plan)
        return plan, engine

    return check


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    eng = getattr(item, "_tl_engine", None)
    if report.when == "call" and report.failed and eng is not None:
        try:
            report.sections.append(("working memory (last consultation)", _facts_dump(eng)))
        except Exception as exc:  # never hide the real failure
            report.sections.append(("working memory (last consultation)", f"unavailable: {exc!r}"))


# --- fuzzing (tests/*/test_fuzz_*.py): how many cases, and a count of those run per reader

FUZZ_FULL = os.environ.get("TLEXPERT_FUZZ", "").lower() == "full"
FUZZ_COUNTS: dict = {}


@pytest.fixture(scope="session")
def fuzz_count() -> Callable[[str], None]:
    """``fuzz_count(reader)``: count one generated case for the end-of-run summary."""

    def count(reader: str) -> None:
        FUZZ_COUNTS[reader] = FUZZ_COUNTS.get(reader, 0) + 1

    return count


FUZZ_MEMORY_BYTES = 400 * 2**20


@pytest.fixture(scope="module")
def memory_ok() -> Callable[[], None]:
    """``memory_ok()``: the memory one generated case allocated at its peak stayed under 400 MiB.

    Measured with tracemalloc from one check to the next: the process's peak RSS covers every
    test that ran before (a model loaded earlier in the session) and says nothing about this case."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()

    def check() -> None:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        assert peak < FUZZ_MEMORY_BYTES, f"one case allocated {peak / 2**20:.0f} MiB at its peak"

    yield check
    if started:
        tracemalloc.stop()


def pytest_terminal_summary(terminalreporter):
    if FUZZ_COUNTS:
        total = sum(FUZZ_COUNTS.values())
        terminalreporter.write_line(f"fuzzed cases ({'full' if FUZZ_FULL else 'everyday'} profile): {total}")
        for name, n in sorted(FUZZ_COUNTS.items()):
            terminalreporter.write_line(f"  {name:<28} {n:>6}")

# Tests that train or load models are `slow`: the everyday loop is `pytest -m "not slow"`, and
# `make test` runs everything. A test is slow when it uses a model fixture or lives in a module
# whose tests train models.
TRAINING_FIXTURES = {"tiny_bert", "weights_file"}
TRAINING_MODULES = {"test_run.py", "test_techniques.py", "test_adapt.py", "test_registry.py", "test_embed.py",
                    "test_backbones.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in TRAINING_MODULES:
            item.add_marker(pytest.mark.slow)
