"""Diagnosis rules: symptoms (reported or measured) -> pitfalls, with evidence and fixes."""

from __future__ import annotations

from rules._experta import MATCH, NOT
from rules.base import Ambiguity, Clarify, Diagnosis, DistinctionFact, Done, Evidence, SymptomSeen, Threshold, rule

SAL = 0


class DiagnosisRules:
    @rule(
        "diagnosis.symptom_evidence",
        SymptomSeen(id=MATCH.symptom, evidence=MATCH.evidence),
        salience=SAL,
    )
    def symptom_evidence(self, symptom, evidence):
        """A symptom is seen -> evidence for each pitfall it indicates, its weight times the measured strength."""
        # a measurement may state its strength (a curve's deviation in units of its own noise), so that
        # confidence grows with the evidence instead of being the symptom's fixed weight
        entry = self.kb.symptoms[symptom]
        st = evidence.get("strength") if hasattr(evidence, "get") else None
        scale = min(1.0, max(0.0, float(st))) if isinstance(st, (int, float)) else 1.0
        for pitfall, weight in entry.indicates.items():
            self.conclude(
                Evidence(pitfall=pitfall, symptom=symptom, weight=round(weight * scale, 3), evidence=evidence),
                basis=[f"symptoms:{symptom}"],
            )

    @rule(
        "diagnosis.combine_evidence",
        Evidence(pitfall=MATCH.pitfall),
        Threshold(diagnosis_min_confidence=MATCH.floor),
        NOT(Done(step="diagnose", pitfall=MATCH.pitfall)),
        salience=SAL - 10,
        basis=["thresholds:diagnosis_min_confidence"],
    )
    def combine_evidence(self, pitfall, floor):
        """All evidence for one pitfall -> a diagnosis, confidence 1 - prod(1 - weight), if above the floor."""
        self.conclude(Done(step="diagnose", pitfall=pitfall))
        items = sorted((e for e in self.facts_of(Evidence) if e["pitfall"] == pitfall),
                       key=lambda e: (-e["weight"], e["symptom"]))
        miss = 1.0
        for e in items:
            miss *= 1.0 - e["weight"]
        confidence = round(1.0 - miss, 3)
        if confidence < floor:
            return
        self.conclude(
            Diagnosis(pitfall=pitfall, confidence=confidence,
                      symptoms=[e["symptom"] for e in items],
                      why=f"{len(items)} symptom(s) point to {pitfall.replace('_', ' ')}"),
            basis=[f"pitfalls:{pitfall}", *(f"symptoms:{e['symptom']}" for e in items)],
        )

    @rule(
        "diagnosis.ask_to_distinguish",
        Ambiguity(text=MATCH.text, a=MATCH.a, b=MATCH.b, symptoms=MATCH.symptoms, scores=MATCH.scores),
        DistinctionFact(a=MATCH.a, b=MATCH.b, id=MATCH.distinction),
        salience=SAL + 5,
    )
    def ask_to_distinguish(self, text, a, b, symptoms, scores, distinction):
        """A description fits pitfalls a and b about equally and a known question tells them apart -> ask it."""
        self.conclude(
            Clarify(distinction=distinction, text=text, pitfalls=[a, b], symptoms=list(symptoms),
                    scores=list(scores)),
            basis=[f"distinctions:{distinction}", "thresholds:symptom_ambiguity_margin"],
        )
