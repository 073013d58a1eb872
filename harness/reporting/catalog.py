"""What ``models``, ``rules`` and ``symptoms`` print: the knowledge base's catalog as records (JSON,
YAML) or as text for people."""

from __future__ import annotations

import click

from harness.reporting.render import table
from knowledge.units import fmt_params


def model_records(rows) -> list[dict]:
    return [{"id": m.id, "name": m.name, "family": m.family.value, "tasks": m.tasks,
             "params": m.params, "gflops": m.gflops, "per": m.per, "speed": m.speed.value,
             "licence": m.licence, "languages": m.languages, "context_length": m.context_length or None,
             "quality": {t: {"metric": q.metric, "value": q.value, "source": q.source, "date": q.date,
                             "reported": q.reported} for t, q in m.quality.items()},
             "cite": m.cite, "reported": m.reported, "best_use": m.best_use,
             "open_weights": m.open_weights, "offline": m.offline, "builder": m.builder or None,
             "sources": m.sources} for m in rows]


def models_text(kb, rows) -> str:
    if not rows:
        return "No model matches these filters."

    def size(m):
        return fmt_params(m.params) + ("*" if "params" in m.reported else "")

    ref = kb.threshold("speed_reference_device")
    return table(
        ["model", "family", "params", "GFLOPs", "speed", "licence", "languages", "offline", "tasks", "sources"],
        [[m.id, m.family.value, size(m), f"{m.gflops:g}/{ {'token': 'tok', 'clip': 'clip'}.get(m.per, 'img')}",
          m.speed.value, (m.licence or "-").split(" (")[0], ",".join(m.languages) or "-",
          "yes" if m.offline else ("API only" if not m.open_weights else ("--weights" if m.builder else "no")),
          ",".join(m.tasks), ",".join(m.sources)] for m in rows], max_width=48) + (
        f"\n\nspeed: estimated latency per input on a {kb.devices[ref].name} (GFLOPs per image, or per "
        f"token for text). * a reported estimate, not an official figure. Sources: `tlexpert models "
        f"--format yaml` (every number cites one).")


def _rule_sources(kb, info) -> list[str]:
    out = []
    for b in info.basis:
        section, _, key = b.partition(":")
        out.append(kb.sources[key].title if section == "sources" else b)
    return out


def rule_records(kb, infos) -> list[dict]:
    return [{"id": r.id, "topic": r.topic, "doc": r.doc, "salience": r.salience,
             "basis": list(r.basis), "sources": _rule_sources(kb, r)} for r in infos]


def rules_text(kb, infos) -> str:
    lines = []
    for r in infos:
        lines.append(click.style(r.id, bold=True) + f"  {r.doc}")
        if r.basis:
            lines.append("    rests on: " + "; ".join(_rule_sources(kb, r)))
    return "\n".join(lines)


def symptom_records(rows) -> list[dict]:
    return [{"id": s.id, "description": s.description, "indicates": s.indicates,
             "aliases": list(s.aliases), "measured_by": s.measured_by} for s in rows]


def symptoms_text(rows) -> str:
    return "\n".join(click.style(s.id, bold=True) + f"  {s.description}  → "
                     + ", ".join(f"{p} ({w:g})" for p, w in s.indicates.items()) for s in rows)
