"""Property tests over generated valid scenarios (hypothesis).

One engine serves every example (``consult`` resets working memory); an example
costs one to three consultations of tens of milliseconds, so ``max_examples`` (60)
keeps the file near half a minute on two cores.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge import get_kb
from rules.base import Approach, Candidate, Hyper, Technique
from rules.engine import get_engine
from rules.scenario import ENUMS, normalize

KB = get_kb()
ENGINE = get_engine(KB)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

latency = st.one_of(st.integers(min_value=1, max_value=10**6),
                    st.floats(min_value=0.5, max_value=10**6, allow_nan=False, allow_infinity=False))

scenarios = st.fixed_dictionaries(
    {
        "task": st.sampled_from(sorted(KB.tasks)),
        "dataset_size": st.integers(min_value=1, max_value=10**8),
        **{key: st.sampled_from(choices) for key, choices in ENUMS.items()},
    },
    optional={
        "latency_ms": latency,
        "gpu_memory_gb": st.floats(min_value=0.25, max_value=1024, allow_nan=False, allow_infinity=False),
        "num_classes": st.integers(min_value=2, max_value=10_000),
        "symptoms": st.lists(st.sampled_from(sorted(KB.symptoms)), max_size=3, unique=True),
    },
).map(lambda d: {**d, "dataset_size": max(d["dataset_size"], d.get("num_classes", 0))})
# (a scenario with more classes than examples is refused: every class needs an example)


def consult(fields):
    plan = ENGINE.consult(normalize(fields, KB)).to_dict()
    return plan, ENGINE


def dump(engine) -> str:
    return "\n".join(f"{type(f).__name__} {dict(f.as_dict())}" for f in engine.facts.values())


@SETTINGS
@given(scenarios)
def test_every_valid_scenario_gets_one_approach_one_technique_and_a_candidate(fields):
    plan, engine = consult(fields)
    assert len(engine.facts_of(Approach)) == 1, dump(engine)
    assert len(engine.facts_of(Technique)) == 1, dump(engine)
    cands = engine.facts_of(Candidate)
    assert len(cands) >= 1, dump(engine)
    assert sorted(f["rank"] for f in cands) == list(range(1, len(cands) + 1))
    # one deciding rule per setting (a technique's default may be overruled by one, never two)
    names = [f["name"] for f in engine.facts_of(Hyper) if not f.get("default")]
    assert len(names) == len(set(names)), dump(engine)
    defaults = [f["name"] for f in engine.facts_of(Hyper) if f.get("default")]
    assert len(defaults) == len(set(defaults)), dump(engine)
    assert plan["technique"]["choice"] in KB.techniques
    assert plan["approach"]["choice"] == KB.techniques[plan["technique"]["choice"]].approach
    json.dumps(plan, allow_nan=False)


@SETTINGS
@given(scenarios)
def test_normalize_is_idempotent(fields):
    once = normalize(fields, KB)
    assert normalize(once, KB) == once


@SETTINGS
@given(scenarios, latency, latency)
def test_a_tighter_latency_budget_never_yields_a_slower_top_candidate(fields, a, b):
    # Latency, not size: a 5.5M-parameter MobileNetV3 runs faster than a 5.3M EfficientNet-B0.
    tight, loose = sorted((a, b))
    fields = {k: v for k, v in fields.items() if k != "latency_ms"}
    top = {}
    for budget in (None, loose, tight):
        plan, engine = consult({**fields, "latency_ms": budget})
        top[budget] = plan["candidates"][0]
    slowness = [top[x]["latency_ms"] for x in (tight, loose, None)]
    if None not in slowness:
        assert slowness == sorted(slowness), (top, fields)
    for budget in (tight, loose):  # a top candidate that meets the budget is never passed over for one that does not
        if top[budget]["latency_ms"] is not None and not top[budget]["meets_constraints"]:
            plan, _ = consult({**fields, "latency_ms": budget})
            assert not any(c["meets_constraints"] for c in plan["candidates"]), (top, fields)


@SETTINGS
@given(scenarios, st.integers(min_value=1, max_value=10**8), st.integers(min_value=1, max_value=10**8))
def test_more_data_never_moves_fine_tuning_back_to_feature_extraction(fields, m, n):
    small, large = sorted((max(m, fields.get("num_classes", 0)), max(n, fields.get("num_classes", 0))))
    first, _ = consult({**fields, "dataset_size": small})
    second, engine = consult({**fields, "dataset_size": large})
    if first["technique"]["choice"] == "fine_tuning":
        assert second["technique"]["choice"] != "feature_extraction", (fields, small, large)
    if first["technique"]["choice"] != "feature_extraction":
        assert second["technique"]["choice"] != "feature_extraction", (fields, small, large)
