"""What `run` prints on the console: a classifier run, a causal-LM run and an auto-fix chain, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

from harness.reporting.render import table


def lm_run_text(record: dict, out: str, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({k: record[k] for k in ("base", "summary", "tests", "symptoms", "diagnoses", "overrides",
                                                  "adaptations", "notes")} | {"run_dir": out}, indent=2, default=str)
    lines: list[str] = []
    for a in record["adaptations"]:
        lines.append(f"Adapted: {a['field']} {a['plan']!r} → {a['used']!r} ({a['why']})")
    b = record["base"]
    lines.append(f"base model: target loss {b['test_loss']:.4f} (perplexity {b['perplexity']:.2f})"
               + "".join(f", {k} loss {v:.4f}" for k, v in b["retention_loss"].items()))
    for t, s in record["summary"].items():
        lines.append(f"{t}: target loss {s['test_loss']:.4f} (perplexity {s['perplexity']:.2f})"
                   + "".join(f", {k} loss {v:.4f}" for k, v in s["retention_loss"].items())
                   + f", KL drift {s['kl_drift']:.5f}, {s['tokens_per_second']} tokens/s")
    if b.get("exact_match") is not None:
        lines.append("exact match (of " + str(b["exact_match_items"]) + " short answers): base " + f"{b['exact_match']:.3f}"
                   + "".join(f", {t} {s['exact_match']:.3f}" for t, s in record["summary"].items()))
    for n, t in record["tests"].items():
        unit = "(share of answers)" if n.startswith("exact_match.") else "nats"
        lines.append(f"test {n}: effect {t['effect']:+.4f} {unit}, p (Holm) {t['p_holm']:.4g}"
                   + (" significant" if t["significant"] else ""))
    for note in record["notes"]:
        lines.append(f"Note: {note}")
    for d in record["diagnoses"]:
        fixes = "; ".join(f"{f['description']} ({f['summary']})" for f in d["fixes"][:2])
        lines.append(f"Diagnosis: {d['name']} (confidence {d['confidence']:.2f}) → {fixes}")
    if not record["diagnoses"]:
        lines.append("No diagnosis: the tests found no problem.")
    lines.append(f"\nReport: {Path(out) / 'report.md'}   (run.json in {out})")
    return "\n".join(lines)


def autofix_text(result: dict, out: str, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({**result, "run_dir": out}, indent=2, default=str)
    lines: list[str] = []

    rows = [[c["round"], c["diagnosis"], c["fix"], c["summary"],
             f"{c['metric_before']:.3f} → {c['metric_after']:.3f}", f"{c['p_improve']:.3g}",
             "kept" if c["kept"] else "reverted", c["why"]] for c in result["chain"]]
    key, name = result.get("metric_key", "accuracy"), result.get("metric", "accuracy")
    lines.append(f"Start: {result['initial']['technique']}, {name} {result['initial'][key]:.3f}, "
               f"symptoms: {', '.join(result['initial']['symptoms']) or 'none'}")
    if rows:
        lines.append(table(["round", "diagnosis", "fix", "change", name, "p", "verdict", "why"], rows, 48))
    f = result["final"]
    lines.append(f"Final: {f['technique']} with {', '.join(f['applied_fixes']) or 'no fix kept'}, "
               f"{name} {f[key]:.3f}, symptoms: {', '.join(f['symptoms']) or 'none'}")
    lines.append(f"\nReport: {Path(out) / 'autofix.md'}")
    return "\n".join(lines)


def run_text(record: dict, out: str, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({k: record[k] for k in ("summary", "tests", "symptoms", "diagnoses", "overrides",
                                                  "adaptations")} | {"run_dir": out}, indent=2, default=str)
    from harness.reporting.report import SUMMARY_HEADERS, summary_rows

    lines = [f"Override: {o['field']} {o['plan']!r} → {o['used']!r} ({o['by']})" for o in record["overrides"]]
    lines += [f"Adapted: {a['field']} {a['plan']!r} → {a['used']!r} ({a['why']})" for a in record["adaptations"]]
    lines.append(table(SUMMARY_HEADERS, summary_rows(record)))
    if record["symptoms"]:
        lines.append("\nSymptoms: " + ", ".join(s["id"] for s in record["symptoms"]))
    for d in record["diagnoses"]:
        fixes = "; ".join(f"{f['description']} ({f['summary']})" for f in d["fixes"][:2] if not f.get("measured"))
        lines.append(f"Diagnosis: {d['name']} (confidence {d['confidence']:.2f}) → {fixes}")
    if not record["diagnoses"]:
        lines.append("\nNo diagnosis: the probes found no problem.")
    lines.append(f"\nReport: {Path(out) / 'report.md'}   (run.json, plots in {out})")
    return "\n".join(lines)


def config_line(cfg: dict) -> str:
    known = cfg.get("known") or {}
    label = {"n_classes": "classes"}
    parts = [f"{label.get(k, k.replace('_', ' '))} {v['value']:g}" if isinstance(v["value"], float) else
             f"{label.get(k, k.replace('_', ' '))} {v['value']}" for k, v in known.items()
             if k in ("learning_rate", "epochs", "batch_size", "frozen_layers", "technique", "n_classes")]
    line = "config read from the log: " + (", ".join(parts) if parts else "nothing")
    if cfg.get("not_in_log"):
        line += f"; not in the log: {', '.join(cfg['not_in_log'])} (fixes for these are relative)"
    return line


def diagnose_text(report: dict) -> str:
    """What `diagnose` prints: what was read, data warnings, and per group its configuration, diagnoses,
    evidence and fixes."""
    out: list[str] = []
    groups = report["groups"]
    n = len(report["runs"])
    out.append(f"Read {n} run(s) in {len(groups)} group(s)"
               + (f" and {len(report['baseline_runs'])} baseline run(s)" if report["baseline_runs"] else "")
               + (f"; not in the logs: {', '.join(report['missing'])}" if report["missing"] else ""))
    for w in report["data_warnings"]:
        out.append(f"Data warning: {w}")
    if report["healthy"]:
        out.append("Healthy: no symptom of a known pitfall in these logs.")
    for g in groups:
        out.append(f"\n== {g['name']} ({len(g['runs'])} run(s))" if g["runs"] else f"\n== {g['name']}")
        if g["runs"]:
            out.append(f"   {config_line(g['config'])}")
        for note in g.get("notes") or []:
            out.append(f"   Note: {note}")
        if "agrees_with_report" in g:
            out.append("   diagnoses as in the run's report.md: " + ("yes" if g["agrees_with_report"] else
                       f"no (recorded: {g['recorded_diagnoses']})"))
            summ = ", ".join(f"{t} {s['accuracy_mean']:.3f}" for t, s in g["summary"].items())
            if summ:
                out.append(f"   accuracy: {summ}")
            for name, t in g["tests"].items():
                if t.get("significant"):
                    out.append(f"   test {name}: effect {t['effect']:+.4f}, p (Holm) {t['p_value']:.4g}")
        if g["healthy"]:
            out.append("   Healthy: no symptom of a known pitfall.")
        for i, d in enumerate(g["diagnoses"], 1):
            out.append(f"   {i}. {d['name']} — confidence {d['confidence']:.2f}, {d['severity']}")
            out.append(f"      {d['what']}")
            for e in d["evidence"]:
                extra = {k: v for k, v in e.items() if k not in ("symptom", "description", "weight")}
                out.append(f"      evidence: {e['symptom']}: {e['description']}")
                if extra:
                    out.append("                " + ", ".join(f"{k}={v}" for k, v in extra.items()))
            for k, f in enumerate(d["fixes"], 1):
                out.append(f"      fix {k}: {f['summary']}   ({f['description']})")
            for h in d.get("held_back") or []:
                out.append(f"      held back: {h['fix']}: {h['why']}")
    if report["trace"]:
        out.append("\nRules: " + ", ".join(dict.fromkeys(t["rule"] for t in report["trace"])))
    return "\n".join(out)


def batch_text(summary: dict, rows: list, output) -> str:
    """What `batch` prints: counts, the `expect:` checks and their failures with the rules that decided, the
    plan check, the invalid rows, and (without -o or checks) the table itself."""
    from knowledge.reading import show

    out: list[str] = []
    out.append(f"{summary['scenarios']} scenarios: {summary['scenarios'] - summary['errors']} consulted, "
               f"{summary['errors']} invalid" + (f"; written to {output}" if output else ""))
    if summary["checks"]:
        out.append(f"Checks: {summary['passed']} passed, {summary['failed']} failed")
        for name, c in summary["by_check"].items():
            out.append(f"  {name:<26} {c['passed']:>5} passed {c['failed']:>5} failed")
    for f in summary["failures"][:50]:
        out.append(show(f"FAIL {f['id']} ({f['file']}:{f['row']}): {f['check']} expected {f['expected']!r}, "
                        f"got {f['actual']!r}", 2000))
        for t in f["trace"]:
            out.append(f"       by {t}")
    if summary["plans_with_violations"]:
        out.append(f"Plan check: {summary['plans_with_violations']} plan(s) contradict themselves: "
                   + ", ".join(f"{k} {n}" for k, n in summary["violations"].items()))
        for v in summary["violation_examples"][:20]:
            out.append(f"LINT {v['id']} ({v['file']}:{v['row']}): [{v['check']}] {v['message']}")
    else:
        out.append("Plan check: no plan contradicts itself (rules.lint)")
    for r in rows:
        if r["status"] == "error":
            out.append(f"ERROR {show(r['id'])}: {r['error']}")  # (the error is escaped already)
    if output is None and not summary["checks"]:
        from harness.scaleout.batch import to_markdown

        out.append(to_markdown(rows, ["id", "task", "family", "top_candidates", "approach",
                                      "technique", "risks", "diagnoses"]))
    return "\n".join(out)


def drift_text(path: str, diff: list[dict], shown: int = 12) -> str:
    """What a plan file runs with where the current knowledge base now plans otherwise."""
    lines = [f"{path}: the current knowledge base gives this scenario a different plan; running the file as "
             f"written (--reconsult runs the new one). Differences (file → now):"]
    lines += [f"  {d['field']}: {d['file']!r} → {d['now']!r}" for d in diff[:shown]]
    if len(diff) > shown:
        lines.append(f"  ... and {len(diff) - shown} more")
    return "\n".join(lines)
