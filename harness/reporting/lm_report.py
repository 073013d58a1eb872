"""The Markdown report of a causal-LM run (``run.json`` of ``harness.training.lm_run``)."""

from __future__ import annotations


def _fmt(x, nd=4):
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def render_lm_report(rec: dict) -> str:
    lines = [f"# Adapting {rec['model']}: {', '.join(rec['techniques'])}", ""]
    d = rec["data"]
    lines += [f"Data: {rec['data']['train']} ({d['examples']['train']} training, {d['examples']['val']} validation, "
              f"{d['examples']['test']} test examples; loss on response tokens only: "
              f"{'yes' if d['prompt_masked'] else 'no'}; at most {d['max_length']} tokens"
              f"{', packed into blocks' if d.get('packing') else ''}"
              + (f"; replay: {d['replay']['ratio']:g} general examples per training example, drawn from "
                 f"{d['replay']['pool']} not measured" if (d.get('replay') or {}).get('ratio') else "") + "). "
              f"Seeds: {rec['seeds']}. Device: {rec['device']}. Time: {rec['seconds']} s.", ""]
    for a in rec.get("adaptations") or []:
        lines.append(f"- Adapted: {a['field']}: plan {a['plan']!r}, used {a['used']!r} ({a['why']})")
    for o in rec.get("overrides") or []:
        lines.append(f"- Override: {o['field']}: plan {o['plan']!r}, used {o['used']!r} ({o['by']})")
    lines += ["", "## Results (mean over seeds; losses in nats per token)", ""]
    ret_keys = list(rec["base"]["retention_loss"])
    em = rec["base"].get("exact_match") is not None
    head = "| model | target loss | perplexity | " + ("exact match | " if em else "") + \
        "".join(f"{k} loss | " for k in ret_keys) + "KL drift | trainable params | tokens/s |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    b = rec["base"]
    lines.append(f"| base (not adapted) | {_fmt(b['test_loss'])} | {_fmt(b['perplexity'], 2)} | "
                 + (f"{_fmt(b['exact_match'], 3)} | " if em else "") + "".join(f"{_fmt(b['retention_loss'][k])} | " for k in ret_keys) + "0 | - | - |")
    for t, s in rec["summary"].items():
        lines.append(f"| {t} | {_fmt(s['test_loss'])} | {_fmt(s['perplexity'], 2)} | "
                     + (f"{_fmt(s.get('exact_match'), 3)} | " if em else "") + "".join(f"{_fmt(s['retention_loss'][k])} | " for k in ret_keys)
                     + f"{_fmt(s['kl_drift'], 5)} | {s['trainable_parameters']:,} | {s['tokens_per_second']} |")
    lines += ["", "## Tests (paired per item, Holm-corrected)", "",
              "| test | effect (adapted - base) | p (Holm) | significant | n |", "|---|---|---|---|---|"]
    for n, t in rec["tests"].items():
        lines.append(f"| {n} | {t['effect']:+.4f} | {t['p_holm']:.4g} | {'yes' if t['significant'] else 'no'} | "
                     f"{t['n']} |")
    if em:
        lines += ["", f"Exact match: the greedy answer starts with the reference, on the {b['exact_match_items']} "
                      f"test items whose reference is at most 4 words."]
    for note in rec.get("notes") or []:
        lines += ["", f"Note: {note}"]
    lines += ["", "## Diagnoses", ""]
    if not rec["diagnoses"]:
        lines.append("No symptom of a known pitfall.")
    for d in rec["diagnoses"]:
        lines.append(f"- **{d.get('name', d['pitfall'])}** (confidence {d['confidence']:.2f})")
        for f in d.get("fixes") or []:
            lines.append(f"  - fix: {f['summary']} ({f['description']})")
    lines += ["", "## Generations (greedy) for fixed prompts", ""]
    s = rec["samples"]
    for i, p in enumerate(s["prompts"]):
        lines += [f"**Prompt {i + 1}:** {p.strip()[:300]!r}", "", f"- base: {s['base'][i].strip()[:300]!r}"]
        for t in rec["techniques"]:
            if t in s:
                lines.append(f"- {t}: {s[t][i].strip()[:300]!r}")
        lines.append("")
    return "\n".join(lines) + "\n"
