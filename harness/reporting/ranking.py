"""A ranking's table rows, its text, CSV/Markdown/JSON renderings and its plot (the ``rank-models`` output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional


TABLE_COLUMNS = ["rank", "model", "mean_rank", "logme", "hscore", "knn", "linear_probe", "params",
                 "latency_ms", "pareto", "status", "note"]


def table_rows(result: dict) -> list[dict]:
    """Flat rows (one per candidate) for text/CSV output."""
    out = []
    for r in result["rows"]:
        pareto = "+".join(n for n, on in (("size", r.get("pareto_params")), ("latency", r.get("pareto_latency")))
                          if on)
        notes = []
        if r.get("rejected"):
            notes.append("rejected by the plan: " + "; ".join(r["rejected"]))
        if r["status"] in ("error", "skipped"):
            notes.append("not scored: " + r["error"])
        elif r.get("estimator_errors"):
            notes.append("; ".join(f"{e} not computed" for e in r["estimator_errors"]))
        note = "; ".join(notes)
        out.append({"rank": r.get("rank"), "model": r["model"], "mean_rank": r.get("mean_rank"),
                    **{e: (round(r["scores"][e], 4) if e in r["scores"] else None)
                       for e in ("logme", "hscore", "knn", "linear_probe")},
                    "params": r.get("params"), "latency_ms": r.get("latency_ms"), "pareto": pareto,
                    "status": r["status"], "note": note})
    return out


def plot_ranking(result: dict, path: str | Path) -> None:
    """Aggregate rank vs parameters and vs latency, Pareto front marked; PNG/SVG/PDF by suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in result["rows"] if r["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, cost, flag, label in ((axes[0], "params", "pareto_params", "parameters"),
                                  (axes[1], "latency_ms", "pareto_latency", "latency (ms per text, measured)")):
        pts = [r for r in ok if r.get(cost) is not None]
        for r in pts:
            marker = "x" if r.get("rejected") else "o"
            color = "tab:red" if r.get(flag) else "tab:gray"
            ax.scatter(r[cost], r["mean_rank"], marker=marker, c=color, s=50, zorder=3)
            ax.annotate(r["model"], (r[cost], r["mean_rank"]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
        front = sorted((r for r in pts if r.get(flag)), key=lambda r: r[cost])
        if len(front) > 1:
            ax.step([r[cost] for r in front], [r["mean_rank"] for r in front], where="post",
                    c="tab:red", lw=1, label="Pareto front")
            ax.legend(fontsize=8)
        if cost == "params" and pts and min(r[cost] for r in pts) > 0:
            ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel(label)
        ax.set_ylabel("mean rank over estimators (1 = best)")
        ax.grid(alpha=0.3)
    a = result["agreement"]
    w = f"Kendall's W = {a['kendall_w']:.2f}" if a.get("kendall_w") is not None else "W n/a"
    fig.suptitle(f"Transferability on {Path(result['data']['origin']).name} "
                 f"({result['data']['examples']} examples, layers: {result['settings']['layer']}; {w})",
                 fontsize=9)
    fig.tight_layout()
    from knowledge.writing import atomic_path

    try:
        with atomic_path(path, Path(path).suffix) as tmp:  # the format follows the extension
            fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".").lower() or None)
    finally:
        plt.close(fig)


def render_ranking(result: dict, verdict: Optional[dict]) -> str:
    from harness.reporting.render import table
    from knowledge.units import fmt_params

    d, a = result["data"], result["agreement"]
    w = "n/a (one estimator or one candidate)" if a["kendall_w"] is None else f"{a['kendall_w']:.2f}"
    tau = "" if a["mean_pairwise_tau"] is None else f", mean pairwise tau {a['mean_pairwise_tau']:.2f}"
    out = [f"Ranking {len(result['rows'])} candidate(s) on {d['origin']} ({d['examples']} examples, "
           f"{len(d['classes'])} classes; layers: {result['settings']['layer']})",
           f"Estimators agree: Kendall's W {w}{tau}"]
    if result["settings"].get("layer_why", "as asked") != "as asked":
        out.append(f"Layers: {result['settings']['layer_why']}")
    if result.get("budget"):
        b = result["budget"]
        out.append(f"Budget: {b['text']}; spent {b['spent_seconds']:.0f} s"
                   + (f"; skipped: {', '.join(b['skipped'])}" if b["skipped"] else ""))
    out.append("")
    rows = []
    for r in table_rows(result):
        def num(v, f="{:.3f}"):
            return "" if v is None else f.format(v)

        rows.append([r["rank"] or "-", r["model"], num(r["mean_rank"], "{:g}"), num(r["logme"]), num(r["hscore"]),
                     num(r["knn"]), num(r["linear_probe"]), fmt_params(r["params"]) if r["params"] else "",
                     num(r["latency_ms"], "{:.1f}"), r["pareto"], r["note"]])
    out.append(table(["rank", "model", "mean rank", "LogME", "H-score", "kNN acc", "probe acc", "params",
                      "ms/text", "Pareto", "note"], rows, 70))
    if result["warnings"]:
        out.append("")
        out += [f"Warning: {w}" for w in result["warnings"]]
    if verdict is not None:
        out.append("")
        out.append(f"Against the catalog: {verdict['verdict']}: {verdict['why']['text']}  [{verdict['why']['rule']}]")
        for n in verdict.get("notes") or []:
            out.append(f"  note: {n['text']}  [{n['rule']}]")
    out.append("")
    out.append("Scores compare candidates on this data only; a raw LogME or H-score value is no verdict by itself.")
    return "\n".join(out)


def ranking_text(result: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, indent=2, default=float, ensure_ascii=False)
    rows = table_rows(result)
    if fmt == "md":
        from harness.scaleout.batch import to_markdown

        return to_markdown(rows, TABLE_COLUMNS)
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    w.writeheader()
    from knowledge.writing import spreadsheet_safe

    for r in rows:
        w.writerow({k: ("" if v is None else spreadsheet_safe(v)) for k, v in r.items()})
    return buf.getvalue()
