"""Render a plan (and its trace) as readable text for the terminal.

The CLI's view of what the rules concluded, kept out of ``rules/`` (which decide). No heavy
imports: ``consult`` renders with it and must start fast."""

from __future__ import annotations

from knowledge.units import fmt_params, format_value


def table(headers: list[str], rows: list[list], max_width: int = 60) -> str:
    """A plain, aligned text table."""
    from knowledge.reading import show

    cells = [[s if len(s) <= max_width else s[: max_width - 1] + "…" for s in (show(c, 4 * max_width) for c in r)]
             for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join([line.rstrip(), sep, *body])


def _why(w: dict) -> str:
    return f"{w['text']}  [{w['rule']}]" if w.get("text") else f"[{w['rule']}]"


def render_plan(plan, kb=None) -> str:
    sc = plan.scenario
    out = []
    add = out.append
    from knowledge.reading import show

    title = show(sc.get("name") or sc.get("id") or sc["task"].replace("_", " "))
    add(f"Transfer-learning plan: {title}")
    add("=" * len(out[-1]))
    facts = [f"task {sc['task']}", f"{sc['dataset_size']} labeled examples",
             f"task similarity {sc['task_similarity']}", f"data similarity {sc['domain_similarity']}",
             f"compute {sc['compute']}" + (f" ({sc['gpu_memory_gb']:g} GiB)" if sc.get("gpu_memory_gb") else ""),
             f"deployment {sc['deployment']}" + (f", {sc['latency_ms']:g} ms budget" if sc.get("latency_ms") else ""),
             f"keep source abilities: {sc.get('retain_source') or 'unknown'}"]
    if sc.get("language"):
        facts.append(f"language {sc['language']}")
    add("Scenario: " + "; ".join(facts))
    if plan.device:
        d = plan.device
        budget = f", budget {d['latency_budget_ms']:g} ms per input" if d.get("latency_budget_ms") else ""
        est = " (throughput a reported estimate)" if d.get("reported_estimate") else ""
        add(f"Deployment device: {d['name']}, ~{d['gflops']:,.4g} GFLOP/s{est}{budget}")
        if d.get("export"):
            add(f"  to deploy: {d['export']}")
    if sc.get("read_as"):
        add("Read as: " + "; ".join(f"{r['field']} {r['given']!r} as {r['as']}" for r in sc["read_as"]))
    if plan.assumptions:
        add("Assumed (not given; set them to change the plan): "
            + "; ".join(f"{a['field']} = {format_value(a['field'], a['value'])}" for a in plan.assumptions))
    if plan.task_note:
        add(f"About this task: {plan.task_note}")
    add("")
    add(f"Architecture: {plan.architecture['name']} ({plan.architecture['family']})")
    add(f"  why: {_why(plan.architecture['why'])}")
    add("Selection criteria, in order: " + ", ".join(c["name"] for c in plan.criteria))
    add(f"  why: {_why(plan.criteria[0]['why'])}")
    add("")
    add("Candidates (best first):")
    for i, c in enumerate(plan.candidates, 1):
        flag = "" if c["meets_constraints"] else "  [misses a constraint]"
        lat = c.get("latency_ms")
        extra = f"  ~{lat:,.4g} ms" if lat is not None else ""
        extra += f"  {c['technique']}" if c.get("technique") else ""
        emp = c.get("empirical")
        if emp:
            flag += (f"  [measured rank {emp['rank']}]" if emp.get("rank") is not None
                     else "  [not scored on your data]")
        add(f"  {i}. {c['name']:<26} {fmt_params(c['params']):>6} params  {c['speed']:<9}{extra}{flag}")
        add(f"     why: {_why(c['why'])}")
    if plan.empirical_ranking:
        out.extend(render_empirical(plan.empirical_ranking).split("\n"))  # one line each (no escaped newlines)
    if plan.rejected:
        add("Rejected:")
        for r in plan.rejected:
            add(f"  - {r['name']}: " + "; ".join(r["reasons"]) + f"  [{', '.join(r['rules'])}]")
    for note in plan.notes or ():
        add(f"Note: {note}")
    if plan.model:
        m = plan.model
        first = plan.candidates[0]["model"] if plan.candidates else None
        add(f"Model the plan runs: {m.name}" + ("" if m.id == first else " (not the first candidate)"))
        add(f"  why: {_why(m.why)}")
    add("")
    add(f"Approach:  {plan.approach['name']}")
    add(f"  why: {_why(plan.approach['why'])}")
    add(f"Technique: {plan.technique['name']}")
    add(f"  why: {_why(plan.technique['why'])}")
    bt = (plan.memory or {}).get("batching")
    if bt:
        add(f"  batching: {bt['batch_size']} examples per optimizer step as {bt['gradient_accumulation']} "
            f"accumulated micro-batch{'es' if bt['gradient_accumulation'] != 1 else ''} of {bt['micro_batch']}"
            f"{', gradient checkpointing on' if bt['gradient_checkpointing'] else ''} "
            f"(~{bt['estimated_gb']:.1f} GiB)")
    if plan.technique.get("objective"):
        add(f"  objective: {plan.technique['objective']}")
    if plan.technique.get("costs"):
        add(f"  costs: {plan.technique['costs']}")
    if plan.technique.get("runs_here") is False:
        add("  note: `tlexpert run` cannot carry this technique out on this install (it needs a CUDA GPU)")
    if plan.technique.get("finding"):
        add(f"  finding: {plan.technique['finding']}")
    add("")
    add("Hyperparameters:")
    # the layers of the model the plan runs (its frozen-layer counts are for that model)
    layers = ((plan.model.layers if plan.model else 0)
              or (plan.candidates[0]["layers"] if plan.candidates else 0))
    for name, value in plan.hyperparameters.as_dict().items():
        if value is None:
            continue
        w = plan.hyperparameters_why.get(name)
        shown = format_value(name, value, layers)
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items())
        add(f"  {name:<24} {shown:<30} {('— ' + _why(w)) if w else ''}".rstrip())
    if plan.training_time:
        add("")
        add(f"Training time: {plan.training_time['text']}  [{plan.training_time['why']['rule']}]")
    if plan.risks:
        add("")
        add("Risks:")
        for r in plan.risks:
            add(f"  - {r['pitfall']} ({r['likelihood']}): {_why(r['why'])}")
            for m in r["mitigations"]:
                add(f"      mitigate: {m['description']}  ({m['summary']})")
    if plan.diagnoses:
        add("")
        add("Diagnoses:")
        for d in plan.diagnoses:
            add(f"  - {d['name']} (confidence {d['confidence']:.2f}): {d['what']}")
            for e in d["evidence"]:
                add(f"      evidence: {e['symptom']}: {e['description']}")
            for k, f in enumerate(d["fixes"], 1):
                add(f"      fix {k}: {f['description']}  ({f['summary']})")
                if f.get("finding"):
                    add(f"             finding: {f['finding']}")
    readings = [r for r in plan.symptom_readings or [] if any(m["method"] != "name" for m in r["matches"])
                or r["ruled_out"] or r.get("note") or r.get("read_as")]
    if readings:
        add("")
        add("How your description was read:")
        for r in readings:
            named = ", ".join(f"{m['symptom']} ({m['pitfall'].replace('_', ' ')}, by {m['method']}"
                              + (f" {m['score']:.2f})" if m["method"] == "meaning" else ")") for m in r["matches"])
            add(f"  - {r['text']!r}: {named or 'no symptom'}")
            if r.get("read_as"):
                add(f"      read as (through the glossary): {r['read_as']!r}")
            j = r.get("judgement")
            if j and j.get("candidates"):
                top = j["candidates"][0]
                how = ("the share of new descriptions read this way that were right" if j["by"].startswith("path:")
                       else "the calibrated classifier")
                add(f"      probability {top['probability']:.2f} that it is {top['pitfall'].replace('_', ' ')} "
                    f"({how}; rules.reader.learned)")
            if r["ruled_out"]:
                add("      ruled out (negated): " + ", ".join(dict.fromkeys(m["symptom"] for m in r["ruled_out"])))
            if r.get("note"):
                add(f"      note: {r['note']}")
    for c in plan.clarify or []:
        add("")
        names = " or ".join(x["pitfall"].replace("_", " ") for x in c["candidates"])
        add(f"To tell {names} apart: {c['question']}  [{c['why']['rule']}]")
        for a in c["answers"]:
            add(f"  - {a['answer']} → {', '.join(a['symptoms'])}")
    ev = plan.evaluation
    add("")
    add(f"Evaluation: {ev.seeds} seed{'s' if ev.seeds != 1 else ''}, alpha {ev.alpha}, "
        f"probes: {', '.join(ev.probes) or 'none'}")
    if ev.metrics:
        add(f"  metrics: {'; '.join(ev.metrics)}; early stopping on {ev.stop_on or 'validation loss'}")
    if ev.why:
        add(f"  seeds: {ev.why}  [evaluation.seeds_by_cost]")
    if ev.protocol:
        add(f"  data: {ev.protocol}  [evaluation.protocol]")
    return _safe(out)


def _safe(lines: list[str]) -> str:
    """User strings reach these lines (names, domain tags): control and bidirectional characters
    are escaped and very long lines cut, so the terminal shows what the file holds."""
    from knowledge.reading import show

    return "\n".join(show(line, 2000) for line in lines)


def render_violations(violations: list[dict]) -> str:
    """The plan linter's findings (``rules.lint``), one line each."""
    if not violations:
        return "\nPlan check: no contradiction found (rules.lint: every invariant holds)."
    out = ["", f"Plan check: {len(violations)} violation(s):"]
    for v in violations:
        out.append(f"  - [{v['check']}] {v['message']}")
    return "\n".join(out)


def render_empirical(er: dict) -> str:
    """The measured ranking inside a plan: verdict with its rule, agreement, scores."""
    w = er.get("kendall_w")
    data = er.get("data") or {}
    out = [f"Measured on your data ({data.get('examples', '?')} examples; estimators "
           f"{', '.join(er.get('estimators') or []) or 'none'}; Kendall's W "
           f"{'n/a' if w is None else f'{w:.2f}'}): {er['verdict']}",
           f"  why: {_why(er['why'])}"]
    for n in er.get("notes") or []:
        out.append(f"  note: {n['text']}  [{n['rule']}]")
    absent = []  # candidates whose weights are not here: one line for all of them
    for r in er.get("rows") or []:
        if r["status"] == "ok":
            sc = ", ".join(f"{k} {v:.3g}" for k, v in r["scores"].items())
            out.append(f"  measured {r['rank']}. {r['model']} (mean rank {r['mean_rank']:g}; {sc})")
        elif "are not on this machine" in (r.get("error") or ""):
            absent.append(r["model"])
        else:
            out.append(f"  not scored: {r['model']}: {r.get('error', '')}")
    if absent:
        out.append(f"  not scored, weights not on this machine ({len(absent)}): {', '.join(absent)}; give a "
                   "local folder of a model in --rank-candidates to score it")
    return "\n".join(out)


def render_trace(plan) -> str:
    out = ["", "Rule trace (how):"]
    for t in plan.trace:
        after = f"  after {', '.join(t['after'])}" if t["after"] else ""
        out.append(f"  {t['step']:>3}. {t['rule']}{after}")
        if t["matched"]:
            out.append(f"       matched:  {'; '.join(t['matched'])}")
        out.append(f"       concluded: {'; '.join(t['concluded'])}")
    return _safe(out)
