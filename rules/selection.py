"""Selection rules: which catalog models fit, which are rejected and why, ranking.

Latency and memory are estimated from the knowledge base's numbers
(``knowledge/estimates.py``): a model's GFLOPs and parameters, the device's
published throughput and bandwidth, the technique's bytes per parameter.
"""

from __future__ import annotations

from knowledge.estimates import area_scale, deployed_gb, fmt_ms, latency_ms, speed_class, training_memory_gb
from knowledge.units import fmt_params
from rules._experta import MATCH, NOT, TEST
from rules.memory import memory_plan
from rules.base import (
    Candidate,
    Criterion,
    DeployDevice,
    Family,
    Fit,
    Language,
    LatencyBudget,
    LatencyCritical,
    MemoryBudget,
    ModelFact,
    Preferred,
    Rejected,
    RunModel,
    Scenario,
    TaskFact,
    TechniqueFact,
    technique_fact,
    Threshold,
    rule,
)

SAL = 40

TECH_NAMES = {"fine_tuning": "full fine-tuning", "lora": "LoRA (16-bit)", "qlora": "QLoRA (4-bit)",
              "feature_extraction": "feature extraction", "from_scratch": "training from scratch"}


def fmt_device_mem(gib: float) -> str:
    """Device memory in decimal units (GB, MB), as devices are sold."""
    b = gib * 2**30
    return f"{b / 1e6:,.0f} MB" if b < 1e9 else f"{b / 1e9:,.1f} GB"


def per_input(model, generative: bool, tokens: int) -> str:
    if model.per != "token":
        return f"per {model.per}"  # per image, per clip (audio)
    return "per generated token" if generative else f"per {tokens}-token input"


def technique_chain(kb, preferred: str, compute: str) -> list[str]:
    """The preferred technique, then its cheaper fallbacks that run on this compute."""
    chain = [preferred, *kb.techniques[preferred].fallback]
    return [t for t in chain if not kb.techniques[t].requires or compute in kb.techniques[t].requires]


def _ns(**kw):
    from types import SimpleNamespace

    return SimpleNamespace(**kw)


def fact_latency(gflops, per, params, spec, generative, tokens, model_input="", image_size=None) -> float:
    """latency_ms from the numbers carried by a ModelFact and a DeployDevice fact."""
    return latency_ms(_ns(gflops=gflops, per=per, params=params, input=model_input), _ns(**spec),
                      generative=generative, sequence_tokens=tokens, image_size=image_size or 0)


def language_covered(wanted: str, langs) -> bool:
    """Does a model trained on ``langs`` handle text in ``wanted``?"""
    langs = set(langs)
    if wanted == "multilingual":
        return "multilingual" in langs
    if wanted == "code":
        return "code" in langs
    return wanted in langs or "multilingual" in langs


class SelectionRules:
    def _tokens(self, generative: bool = False, training: bool = False) -> int:
        from rules.base import sequence_tokens

        return sequence_tokens(self.kb, next(iter(self.facts_of(Scenario)), None), generative, training)

    def estimate(self, model_id: str, device: str, generative: bool) -> float:
        kb = self.kb
        scen = next(iter(self.facts_of(Scenario)), None) or {}
        return latency_ms(kb.models[model_id], kb.devices[device], generative=generative,
                          sequence_tokens=self._tokens(), image_size=scen.get("image_size") or 0)

    # --- what the choice is steered by --------------------------------------
    @rule(
        "selection.criteria_latency_first",
        LatencyCritical(why=MATCH.why),
        salience=SAL,
        basis=["sources:slide-quiz", "sources:slide-model-size"],
    )
    def criteria_latency_first(self, why):
        """Real-time or mobile use -> model size and inference latency are the first criteria."""
        self.conclude(Criterion(rank=1, name="model size and inference latency", why=why))
        self.conclude(Criterion(rank=2, name="architecture and task fit",
                                why="only models built for the task are considered"))
        self.conclude(Criterion(rank=3, name="benchmark quality",
                                why="among models that fit, the best published score on the task's "
                                    "benchmark wins; scores on different benchmarks are not compared"))

    @rule(
        "selection.criteria_fit_first",
        Scenario(),
        NOT(LatencyCritical()),
        salience=SAL,
        basis=["sources:slide-suitability", "sources:slide-architecture-fit"],
    )
    def criteria_fit_first(self):
        """No real-time constraint -> task fit, then the compute budget, then quality."""
        self.conclude(Criterion(rank=1, name="architecture and task fit",
                                why="the five suitability questions start from task match"))
        self.conclude(Criterion(rank=2, name="fits the compute and memory budget",
                                why="models that cannot be trained here are rejected"))
        self.conclude(Criterion(rank=3, name="benchmark quality",
                                why="among models that fit, the best published score on the task's "
                                    "benchmark wins; scores on different benchmarks are not compared"))

    # --- rejections -----------------------------------------------------------
    # In the rules that look at every catalog model, the patterns over one fact (the scenario, the device, the
    # budget, the thresholds) come first and the model last: the network then joins the single facts once and
    # each model once at the end, instead of carrying every model through each join (same matches and the same
    # firing order, which depends on the facts matched, not on the order of the patterns; ~6% of a consultation).
    @rule(
        "selection.reject_closed_weights",
        ModelFact(id=MATCH.model, open_weights=False),
        salience=SAL,
    )
    def reject_closed_weights(self, model):
        """A model whose weights are not released -> rejected: it cannot be fine-tuned or run locally."""
        self.conclude(
            Rejected(model=model, reason="weights not released (API only): cannot be fine-tuned, "
                                         "frozen or deployed on your own hardware"),
            basis=[f"models:{model}"],
        )

    @rule(
        "selection.reject_too_large_for_device",
        Scenario(deployment=MATCH.deployment),
        Threshold(max_params_by_deployment=MATCH.limits),
        ModelFact(id=MATCH.model, params=MATCH.params),
        TEST(lambda params, deployment, limits:
             limits.get(deployment) is not None and params > limits[deployment]),
        salience=SAL,
        basis=["thresholds:max_params_by_deployment", "sources:slide-model-size"],
    )
    def reject_too_large_for_device(self, model, params, deployment, limits):
        """params > max_params_by_deployment[deployment] -> rejected as too large for the device."""
        self.conclude(
            Rejected(model=model, reason=f"{fmt_params(params)} parameters exceed the "
                                         f"{fmt_params(limits[deployment])} limit for {deployment} deployment"),
            basis=[f"models:{model}"],
        )

    @rule(
        "selection.reject_device_memory",
        DeployDevice(id=MATCH.device, spec=MATCH.spec),
        ModelFact(id=MATCH.model, params=MATCH.params),
        TEST(lambda params, spec: params * spec["bytes_per_param"] / 2**30 > spec["memory_gb"]),  # GiB both
        salience=SAL,
    )
    def reject_device_memory(self, model, device, **_):
        """The model's weights (at the device's precision) exceed the device's memory -> rejected."""
        d = self.kb.devices[device]
        need = deployed_gb(self.kb.models[model], d)
        self.conclude(
            Rejected(model=model, reason=f"its weights take ~{fmt_device_mem(need)} at {d.bytes_per_param:g} bytes "
                                         f"per parameter; a {d.name} holds {fmt_device_mem(d.memory_gb)} for a model"),
            basis=[f"models:{model}", f"devices:{device}"],
        )

    @rule(
        "selection.reject_too_slow",
        DeployDevice(id=MATCH.device, spec=MATCH.spec),
        LatencyBudget(ms=MATCH.budget),
        TaskFact(generative=MATCH.generative),
        Threshold(sequence_tokens=MATCH.default_tokens),
        Scenario(sequence_length=MATCH.given_tokens, image_size=MATCH.image_size),
        ModelFact(id=MATCH.model, gflops=MATCH.gflops, per=MATCH.per, params=MATCH.params, input=MATCH.model_input),
        TEST(lambda gflops, per, params, spec, generative, default_tokens, given_tokens, budget, model_input,
             image_size: fact_latency(gflops, per, params, spec, generative, given_tokens or default_tokens,
                                      model_input, image_size) > budget),
        salience=SAL,
        basis=["thresholds:sequence_tokens"],
    )
    def reject_too_slow(self, model, device, budget, generative, **_):
        """Latency estimated from the model's GFLOPs and the device's throughput > the budget -> rejected."""
        m, d = self.kb.models[model], self.kb.devices[device]
        px = (next(iter(self.facts_of(Scenario)), None) or {}).get("image_size")
        est = self.estimate(model, device, generative)
        unit = per_input(m, generative, self._tokens())
        self.conclude(
            Rejected(model=model, reason=f"{fmt_ms(est)} {unit} on a {d.name}, budget {budget:g} ms "
                                         f"({m.gflops * area_scale(m, px or 0):.4g} GFLOPs"
                                         f"{'' if m.per != 'token' else ' per token'}"
                                         f"{f' at {px} px' if px and m.per == 'image' else ''} "
                                         f"at ~{d.gflops:,.4g} GFLOP/s)"),
            basis=[f"models:{model}", f"devices:{device}", *(f"sources:{s}" for s in d.sources)],
        )

    @rule(
        "selection.reject_language",
        Language(value=MATCH.language),
        ModelFact(id=MATCH.model, languages=MATCH.langs),
        TEST(lambda langs, language: bool(langs) and not language_covered(language, langs)),
        salience=SAL,
    )
    def reject_language(self, model, langs, language):
        """A model not trained on the scenario's language -> rejected, naming what it covers."""
        what = ", ".join(langs)
        wanted = "several languages at once" if language == "multilingual" else language
        self.conclude(
            Rejected(model=model, reason=f"trained for {what} text only; the scenario's text is {wanted}"),
            basis=[f"models:{model}"],
        )

    @rule(
        "selection.reject_cpu_training",
        Scenario(compute="cpu"),
        Preferred(value=MATCH.technique),
        TechniqueFact(id=MATCH.technique, trains_backbone=True),
        Threshold(cpu_max_train_params=MATCH.limit),
        ModelFact(id=MATCH.model, params=MATCH.params),
        TEST(lambda params, limit: params > limit),
        salience=SAL,
        basis=["thresholds:cpu_max_train_params"],
    )
    def reject_cpu_training(self, model, params, technique, limit):
        """On cpu, a technique that backpropagates through > cpu_max_train_params -> rejected."""
        self.conclude(
            Rejected(model=model, reason=f"{TECH_NAMES.get(technique, technique)} of {fmt_params(params)} "
                                         f"parameters on a CPU is too slow (limit {fmt_params(limit)})"),
            basis=[f"models:{model}"],
        )

    @rule(
        "selection.fit_memory",
        Preferred(value=MATCH.preferred),
        MemoryBudget(gb=MATCH.gb, assumed=MATCH.assumed),
        Scenario(compute=MATCH.compute),
        Threshold(activation_memory_factor=MATCH.factor, training_overhead_gb=MATCH.overhead,
                  usable_memory_share=MATCH.share),
        ModelFact(id=MATCH.model, params=MATCH.params),
        salience=SAL,
        basis=["thresholds:activation_memory_factor", "thresholds:training_overhead_gb",
               "thresholds:usable_memory_share"],
    )
    def fit_memory(self, model, params, preferred, gb, assumed, compute, factor, overhead, share):
        """The first of the preferred technique and its fallbacks whose memory estimate fits -> Fit; none -> rejected."""
        usable = gb * share
        of = (f"{gb:g} GiB assumed (give gpu_memory_gb if you have more)" if assumed
              else f"{gb:g} GiB available")
        tried = []
        chain = technique_chain(self.kb, preferred, compute)
        small = self.kb.threshold("cpu_full_training_params")
        if compute == "cpu" and self.kb.techniques[preferred].adapters and params <= small:
            # LoRA on a CPU saves time; a model this small trains in full in minutes
            chain = ["fine_tuning", *chain]
        for tech in chain:
            plan = self._memory_plan(model, tech, usable)
            if plan is None:  # no layer count or not a text transformer: the coarse estimate
                need = training_memory_gb(params, self.kb.techniques[tech].memory_bytes_per_param, factor, overhead)
                how, fits, batching = "", need <= usable, None
            else:
                need, how, fits, batching = plan
            if fits:
                if tech != preferred and not tried:
                    why = (f"a model of {fmt_params(params)} parameters trains in full on a CPU in minutes (up to "
                           f"{fmt_params(small)}: cpu_full_training_params), so LoRA's saving does not pay; "
                           f"{TECH_NAMES.get(tech, tech)} needs ~{need:,.1f} GiB{how} of {usable:.1f} GiB usable")
                elif tried:
                    why = (f"{'; '.join(tried)}: more than the {usable:.1f} GiB usable of {gb:g} GiB; "
                           f"{TECH_NAMES.get(tech, tech)} needs ~{need:,.1f} GiB{how} and fits")
                else:
                    why = f"{TECH_NAMES.get(tech, tech)} needs ~{need:,.1f} GiB{how} of {usable:.1f} GiB usable"
                self.conclude(Fit(model=model, technique=tech, gb=round(need, 2), why=why,
                                  batching=batching or {}),
                              basis=[f"models:{model}", f"techniques:{tech}"])
                return
            tried.append(f"{TECH_NAMES.get(tech, tech)} needs ~{need:,.1f} GiB{how}")
        self.conclude(
            Rejected(model=model, reason=f"{'; '.join(tried)}: more than the {usable:.1f} GiB usable of {of}"),
            basis=[f"models:{model}", *(f"techniques:{t}" for t in technique_chain(self.kb, preferred, compute))],
        )

    def _memory_plan(self, model: str, tech: str, usable: float):
        """The training memory of ``model`` with ``tech`` and how its batch fits (``rules.memory``)."""
        return memory_plan(self.kb, model, tech, usable, next(iter(self.facts_of(Scenario)), None) or {})

    # --- ranking --------------------------------------------------------------
    @rule(
        "selection.rank_candidates",
        Family(value=MATCH.family),
        Preferred(value=MATCH.preferred),
        Scenario(task=MATCH.task),
        DeployDevice(id=MATCH.device),
        TaskFact(generative=MATCH.generative),
        salience=SAL - 10,
        basis=["sources:slide-model-size", "sources:slide-suitability", "sources:kornblith2019better"],
    )
    def rank_candidates(self, family, preferred, task, device, generative):
        """After all rejections: rank the models that fit (family fit, then quality on the task's benchmark, then size)."""
        kb = self.kb
        rejected = {f["model"] for f in self.facts_of(Rejected)}
        fits = {f["model"]: f for f in self.facts_of(Fit)}
        models = self.facts_of(ModelFact)
        ok = [m for m in models if m["id"] not in rejected and m["id"] in fits]
        bounds = kb.threshold("speed_class_ms")
        tokens = self._tokens()
        from rules.base import benchmark_of, frozen_figure, scenario_words

        benchmark = benchmark_of(kb.tasks[task], {"language": next(
            (f["value"] for f in self.facts_of(Language)), None)})

        latency_first = bool(self.facts_of(LatencyCritical))
        from knowledge.schema import SPEED_ORDER

        # frozen features are judged by frozen-feature evidence: a plan that keeps the backbone frozen
        # ranks models trained to embed (text) first, then by the frozen-feature benchmark, then by the
        # fine-tuning one
        task_entry = kb.tasks[task]
        frozen = bool(task_entry.benchmark_frozen) and not kb.techniques[preferred].trains_backbone

        # with a frozen backbone every family the course's table fits to the task competes on the
        # frozen-feature benchmark (a strong pre-trained ViT's features beat a CNN's; the table's
        # first family still leads when the backbone is trained)
        fitting = {a.id for a in kb.sections["architectures"].values() if task in a.best_for} if frozen else set()

        instruct_first = bool(scenario_words(next(iter(self.facts_of(Scenario)), None) or {})
                              & set(task_entry.instruct_cues))

        def key(m):
            q = m["quality"]
            quality = (q is None, -(q if q is not None else 0))
            if instruct_first:  # the target follows instructions: an instruction-tuned variant before its base
                quality = (*quality, not (kb.models[m["id"]].base_model or "instruct" in m["id"]
                                          or m["id"].endswith("-it")))
            if frozen:
                m = {**m, "family": family if m["family"] in fitting else m["family"]}
                fq = m["frozen_quality"]
                quality = (not m["embedding"] if task_entry.modality.value == "text" else False,
                           fq is None, -(fq if fq is not None else 0), *quality)
            if latency_first:  # size and latency first: a faster class on the device always ranks higher
                speed = SPEED_ORDER[speed_class(self.estimate(m["id"], device, generative), bounds)]
                return (speed, m["family"] != family, *quality, m["params"], m["id"])
            return (m["family"] != family, *quality, m["params"], m["id"])

        if ok:
            ranked = sorted(ok, key=key)
            meets = True
        else:  # nothing fits every constraint: offer the fastest, smallest model, flagged
            ranked = sorted(models, key=lambda m: (self.estimate(m["id"], device, generative), m["params"],
                                                   m["id"]))[:1]
            meets = False
        dev = kb.devices[device]
        for rank, m in enumerate(ranked, 1):
            entry = kb.models[m["id"]]
            est = self.estimate(m["id"], device, generative)
            why = [f"{fmt_params(m['params'])} parameters, {fmt_ms(est)} "
                   f"{per_input(entry, generative, tokens)} on a {dev.name} "
                   f"({speed_class(est, bounds).replace('_', ' ')})"]
            if m["family"] == family or m["family"] in fitting:
                why.append(f"{m['family']} family fits {task.replace('_', ' ')}")
            else:
                why.append(f"{m['family']} family also handles {task.replace('_', ' ')}")
            if frozen:
                fq = frozen_figure(entry, task_entry)
                kind = "trained for sentence embeddings; " if m["embedding"] else ""
                if fq is not None:
                    as_probe = (" (a supervised classifier's own accuracy: a linear head on its frozen features)"
                                if fq.metric == task_entry.benchmark_frozen_equivalent else "")
                    why.append(f"{kind}frozen features: {fq.metric} {fq.value:g} ({fq.source}, {fq.date or 'n.d.'})"
                               f"{as_probe}")
                else:
                    why.append(f"{kind}no published {task_entry.benchmark_frozen} figure: ranked after those with "
                               f"one for a frozen backbone")
            shown = entry.quality.get(task)
            if frozen and shown is not None and fq is not None and shown.metric == fq.metric:
                pass  # already shown as the frozen-feature figure
            elif shown is not None:
                compared = "" if shown.metric == benchmark else f" (not compared: the ranking uses {benchmark})"
                est_mark = ", a reported estimate" if shown.reported else ""
                why.append(f"{shown.metric} {shown.value:g} ({shown.source}, {shown.date or 'n.d.'}{est_mark})"
                           f"{compared}")
            elif entry.base_model and m["quality"] is not None:
                bq = kb.models[entry.base_model].quality.get(task)
                why.append(f"ranked by its base model's {bq.metric} {bq.value:g} ({entry.base_model}, {bq.source}): "
                           "instruction tuning keeps the base's knowledge")
            elif benchmark:
                why.append(f"no published {benchmark} figure: ranked after those with one")
            fit = fits.get(m["id"])
            if fit is not None:
                why.append(fit["why"])
            if entry.licence:
                why.append(f"licence: {entry.licence}")
            why.append(m["best_use"])
            if m["offline"]:
                why.append("weights load offline on this install")
            if not meets:
                why.append("no model meets every constraint; this is the fastest on the device, "
                           "relax the budget or expect to miss it")
            self.conclude(
                Candidate(model=m["id"], rank=rank, meets_constraints=meets,
                          technique=fit["technique"] if fit is not None else None,
                          memory_gb=fit["gb"] if fit is not None else None,
                          latency_ms=round(est, 3), speed=speed_class(est, bounds), why="; ".join(why)),
                basis=[f"models:{m['id']}", f"devices:{device}"],
            )

    # --- the technique, now that the top candidate is known --------------------
    @rule(
        "technique.from_top_candidate",
        Candidate(rank=1, model=MATCH.model, technique=MATCH.technique, meets_constraints=True),
        Preferred(value=MATCH.preferred, why=MATCH.reason),
        salience=SAL - 15,
        basis=["techniques:fine_tuning", "techniques:lora", "techniques:qlora"],
    )
    def from_top_candidate(self, model, technique, preferred, reason):
        """The top candidate trains with the first technique whose memory fits -> that is the plan's technique."""
        fit = next(f for f in self.facts_of(Fit) if f["model"] == model)
        if technique == preferred:
            why = f"{reason}; {fit['why']}"
        else:
            why = (f"{TECH_NAMES.get(preferred, preferred)} was the first choice ({reason}), but for "
                   f"{self.kb.models[model].name} {fit['why']}")
        self.conclude(technique_fact(self.kb, technique, why), basis=[f"techniques:{technique}", f"models:{model}"])

    @rule(
        "technique.nothing_fits",
        Candidate(rank=1, meets_constraints=False),
        Preferred(value=MATCH.preferred, why=MATCH.reason),
        salience=SAL - 15,
    )
    def nothing_fits(self, preferred, reason):
        """No model meets every constraint -> keep the technique the data and compute call for."""
        self.conclude(technique_fact(self.kb, preferred, f"{reason} (no model fits every constraint)"),
                      basis=[f"techniques:{preferred}"])

    @rule(
        "technique.no_candidates",
        Preferred(value=MATCH.preferred, why=MATCH.reason),
        NOT(Candidate()),
        salience=SAL - 15,
    )
    def no_candidates(self, preferred, reason):
        """The catalog holds no model for the task -> the technique the data and compute call for."""
        self.conclude(technique_fact(self.kb, preferred, f"{reason} (the catalog holds no model for this task)"),
                      basis=[f"techniques:{preferred}"])

    # --- the model the harness loads -----------------------------------------
    @rule(
        "selection.run_model",
        Candidate(rank=1, model=MATCH.top),
        salience=SAL - 15,
        basis=["sources:slide-suitability"],
    )
    def run_model(self, top):
        """After ranking: run the best-ranked candidate that loads offline here, else the top one (given locally)."""
        ranked = sorted(self.facts_of(Candidate), key=lambda c: c["rank"])
        usable = next((c["model"] for c in ranked if c["meets_constraints"] and self.kb.models[c["model"]].offline),
                      None)
        if usable is None:
            why = (f"{top} ranks first; its weights are not installed here, so `tlexpert run` needs them "
                   f"as a local folder or weights file (--model / --weights)")
            self.conclude(RunModel(model=top, available=False, why=why), basis=[f"models:{top}"])
        else:
            why = (f"{usable} ranks first" if usable == top else
                   f"{usable} is the best-ranked candidate whose weights load offline here ({top} ranks "
                   f"first: give its local folder with --model to run it instead)")
            self.conclude(RunModel(model=usable, available=True, why=why), basis=[f"models:{usable}"])
