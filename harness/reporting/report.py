"""report.md and PNG plots of a run record."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def summary_rows(record: dict) -> list[list]:
    rows = []
    for tech, s in record["summary"].items():
        sl = s.get("slices") or {}
        rows.append([tech, s["seeds"], f"{s['accuracy_mean']:.3f}",
                     f"[{s['accuracy_ci'][0]:.3f}, {s['accuracy_ci'][1]:.3f}]",
                     f"{s['macro_f1_mean']:.3f}",
                     f"{sl['emoji']:.3f}" if "emoji" in sl else "-",
                     f"{sl['no_emoji']:.3f}" if "no_emoji" in sl else "-",
                     f"{s['seconds_mean']:.1f}"])
    return rows


SUMMARY_HEADERS = ["technique", "seeds", "accuracy", "95% CI", "macro-F1", "emoji slice",
                   "no-emoji slice", "s/seed"]


def _md_table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out)


def plots(out: Path, record: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    # per-seed accuracy with CIs
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (tech, s) in enumerate(record["summary"].items()):
        rs = record["results"].get(tech) or record["baseline"]
        accs = [r["accuracy"] for r in rs]
        ax.scatter([i] * len(accs), accs, alpha=0.6)
        ax.errorbar([i], [s["accuracy_mean"]], yerr=[[s["accuracy_mean"] - s["accuracy_ci"][0]],
                                                      [s["accuracy_ci"][1] - s["accuracy_mean"]]],
                    fmt="_k", capsize=6)
    ax.set_xticks(range(len(record["summary"])), list(record["summary"]), rotation=15)
    ax.set_ylabel("test accuracy (per seed, mean ± 95% CI)")
    fig.tight_layout()
    files.append(_save(fig, out / "seeds.png"))
    # learning curves
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for tech, rs in record["results"].items():
        for r in rs[:1]:
            ep = [c["epoch"] for c in r["curves"]]
            ax.plot(ep, [c.get("val_macro_f1") for c in r["curves"]], marker="o", label=f"{tech} (seed {r['seed']})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation macro-F1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(_save(fig, out / "learning_curves.png"))
    # slice gaps
    techs = [t for t, s in record["summary"].items() if s.get("slices")]
    if techs:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = np.arange(len(techs))
        ax.bar(x - 0.2, [record["summary"][t]["slices"]["emoji"] for t in techs], 0.4, label="with emoji")
        ax.bar(x + 0.2, [record["summary"][t]["slices"]["no_emoji"] for t in techs], 0.4, label="without")
        ax.set_xticks(x, techs, rotation=15)
        ax.set_ylabel("accuracy")
        ax.legend()
        fig.tight_layout()
        files.append(_save(fig, out / "slices.png"))
    plt.close("all")
    return files


def _save(fig, path: Path) -> str:
    from knowledge.writing import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    return path.name


def write_report(out: Path, record: dict, plan) -> None:
    """``report.md`` (and its plots) in ``out`` for the run ``record`` of ``plan``."""
    images = plots(out, record)
    lines = [f"# Run report: {plan.scenario.get('name') or plan.scenario['task']}", "",
             f"Model `{record['config']['model_name']}` on {record['device']} "
             f"({record['threads']} threads); {record['config']['sizes']}; "
             f"{record['seconds']:.0f} s in all.", "",
             f"Plan: {plan.approach['choice']}, {plan.technique_id} "
             f"({plan.technique['why']['text']}).", ""]
    changed = [f"- `{o['field']}`: {o['plan']!r} in the plan, {o['used']!r} run ({o['by']})"
               for o in record.get("overrides", [])]
    changed += [f"- `{a['field']}`: {a['plan']!r} in the plan, {a['used']!r} run ({a['why']})"
                for a in record.get("adaptations", [])]
    if changed:
        lines += ["What ran differs from the plan file here:", "", *changed, ""]
    lines += ["## Results", "", _md_table(SUMMARY_HEADERS, summary_rows(record)), "",
             "## Tests (Holm-corrected across this run)", ""]
    rows = [[n, f"{t['effect']:+.4f}" if t["effect"] is not None else "-",
             f"[{t['ci_low']:.4f}, {t['ci_high']:.4f}]" if t["ci_low"] is not None else "-",
             f"{t['p_value']:.4g}", "yes" if t["significant"] else "no", t["method"]]
            for n, t in record["tests"].items()]
    lines += [_md_table(["test", "effect", "CI", "p (Holm)", "significant", "method"], rows), ""]
    m = record["measurements"]
    if m.get("unk_rate_test") is not None:
        lines += [f"Tokenizer coverage: {m['unk_rate_test']:.1%} of test texts contain [UNK]; "
                  f"{m['emoji_rows_test']} test rows hold emoji.", ""]
    if m.get("source_accuracy_before") is not None:
        lines += [f"Source task (digits 0-4) accuracy of the pre-trained CNN: {m['source_accuracy_before']:.3f}.", ""]
    lines += ["## Symptoms and diagnoses", ""]
    if not record["symptoms"]:
        lines.append("No symptom measured: the run looks healthy.")
    for s in record["symptoms"]:
        lines.append(f"- symptom `{s['id']}`: {s['evidence']}")
    for d in record["diagnoses"]:
        lines.append(f"- **{d['name']}** (confidence {d['confidence']:.2f})")
        for f in d["fixes"]:
            note = f" — {f['measured']}" if f.get("measured") else ""
            lines.append(f"  - fix: {f['description']} ({f['summary']}){note}")
    lines += ["", "## Plots", ""] + [f"![{i}]({i})" for i in images]
    from knowledge.writing import write_atomic

    write_atomic(out / "report.md", "\n".join(lines) + "\n")
