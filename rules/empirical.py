"""Empirical-ranking rules: when transferability scores measured on the user's data
reorder the catalog's candidates, confirm them, or are too weak to act on.

The harness (``rank-models``, ``consult --data``) hands the ranking in as facts:
one ``EmpiricalScore`` per catalog candidate it scored and one
``EmpiricalAgreement`` (Kendall's W over the estimators). A single estimator's
order never overturns the catalog (no estimator wins on every dataset); the
estimators must agree (``rank_overturn_min_agreement``).
"""

from __future__ import annotations

from knowledge.schema import SPEED_ORDER
from rules._experta import MATCH, TEST
from rules.base import (
    Candidate,
    LatencyCritical,
    EmpiricalAgreement,
    EmpiricalComparison,
    EmpiricalScore,
    EmpiricalVerdict,
    Rejected,
    Threshold,
    rule,
)

SAL = 28


class EmpiricalRules:
    @rule(
        "selection.measured_compare_orders",
        EmpiricalAgreement(),
        Candidate(rank=1),
        salience=SAL,
        basis=["sources:you2021logme", "sources:garbas2024choose"],
    )
    def compare_orders(self):
        """Candidates ranked and a measured ranking given -> the catalog's and the measured order of the scored candidates (within speed classes when latency comes first)."""
        if self.facts_of(EmpiricalComparison):
            return
        scores = {f["model"]: f for f in self.facts_of(EmpiricalScore)}
        cands = sorted(self.facts_of(Candidate), key=lambda f: f["rank"])
        catalog = [c["model"] for c in cands if c["model"] in scores]
        latency_first = bool(self.facts_of(LatencyCritical))
        speed = {c["model"]: SPEED_ORDER.get(c.get("speed"), 0) for c in cands}
        measured = sorted(catalog, key=lambda m: (speed[m] if latency_first else 0, scores[m]["rank"],
                                                  catalog.index(m)))
        self.conclude(EmpiricalComparison(catalog=catalog, measured=measured, n=len(catalog),
                                          same_order=catalog == measured, latency_first=latency_first,
                                          same_top=bool(catalog) and catalog[0] == measured[0]))

    @rule(
        "selection.measured_overturns_catalog",
        EmpiricalComparison(same_order=False, n=MATCH.n, catalog=MATCH.catalog, measured=MATCH.measured,
                            same_top=MATCH.same_top, latency_first=MATCH.latency_first),
        EmpiricalAgreement(kendall_w=MATCH.w),
        Threshold(rank_overturn_min_agreement=MATCH.wmin, rank_overturn_min_candidates=MATCH.nmin),
        TEST(lambda n, w, wmin, nmin: n >= nmin and w is not None and w >= wmin),
        salience=SAL - 1,
        basis=["thresholds:rank_overturn_min_agreement", "thresholds:rank_overturn_min_candidates"],
    )
    def overturns_catalog(self, n, catalog, measured, same_top, latency_first, w, wmin):
        """Estimators agree (W >= rank_overturn_min_agreement) and order the scored candidates otherwise -> the measured order replaces the catalog's."""
        top = "" if same_top else f"; {measured[0]} now comes first instead of {catalog[0]}"
        if latency_first:
            top += " (reordered within speed classes only: size and latency come first)"
        self.conclude(EmpiricalVerdict(
            verdict="overturns", order=list(measured),
            why=f"on your data the estimators agree (Kendall's W {w:.2f} >= {wmin:g}) on the order "
                f"{' > '.join(measured)}, which differs from the catalog's {' > '.join(catalog)}{top}"))

    @rule(
        "selection.measured_confirms_catalog",
        EmpiricalComparison(same_order=True, n=MATCH.n, catalog=MATCH.catalog),
        EmpiricalAgreement(kendall_w=MATCH.w),
        Threshold(rank_overturn_min_agreement=MATCH.wmin, rank_overturn_min_candidates=MATCH.nmin),
        TEST(lambda n, w, wmin, nmin: n >= nmin and w is not None and w >= wmin),
        salience=SAL - 1,
        basis=["thresholds:rank_overturn_min_agreement"],
    )
    def confirms_catalog(self, catalog, w, wmin):
        """Estimators agree and order the scored candidates as the catalog does -> the catalog order is confirmed."""
        self.conclude(EmpiricalVerdict(
            verdict="confirms", order=list(catalog),
            why=f"the estimators agree (Kendall's W {w:.2f} >= {wmin:g}) with the catalog's order "
                f"{' > '.join(catalog)}"))

    @rule(
        "selection.measured_estimators_disagree",
        EmpiricalComparison(n=MATCH.n, catalog=MATCH.catalog),
        EmpiricalAgreement(kendall_w=MATCH.w),
        Threshold(rank_overturn_min_agreement=MATCH.wmin, rank_overturn_min_candidates=MATCH.nmin),
        TEST(lambda n, w, wmin, nmin: n >= nmin and (w is None or w < wmin)),
        salience=SAL - 1,
        basis=["thresholds:rank_overturn_min_agreement", "sources:garbas2024choose"],
    )
    def estimators_disagree(self, catalog, w, wmin):
        """Estimators disagree (W < rank_overturn_min_agreement, or a single estimator) -> the catalog order stands."""
        got = "a single estimator" if w is None else f"Kendall's W {w:.2f} < {wmin:g}"
        self.conclude(EmpiricalVerdict(
            verdict="inconclusive", order=list(catalog),
            why=f"the estimators do not agree enough to reorder the catalog ({got}); "
                f"the catalog order stands"))

    @rule(
        "selection.measured_too_few_scored",
        EmpiricalComparison(n=MATCH.n),
        Threshold(rank_overturn_min_candidates=MATCH.nmin),
        TEST(lambda n, nmin: n < nmin),
        salience=SAL - 1,
        basis=["thresholds:rank_overturn_min_candidates"],
    )
    def too_few_scored(self, n, nmin):
        """Fewer than rank_overturn_min_candidates of the plan's candidates scored -> no empirical order, the catalog order stands."""
        self.conclude(EmpiricalVerdict(
            verdict="inconclusive", order=[],
            why=f"only {n} of the plan's candidates could be scored on your data (at least {nmin} are "
                f"needed to compare orders); the catalog order stands"))

    @rule(
        "selection.measured_best_rejected",
        EmpiricalScore(model=MATCH.model, rank=1),
        Rejected(model=MATCH.model, reason=MATCH.reason),
        salience=SAL,
        basis=["sources:slide-model-size"],
    )
    def best_is_rejected(self, model, reason):
        """The model that scores best on the data is rejected by a constraint -> it stays rejected, and the plan says so."""
        self.conclude(EmpiricalVerdict(
            verdict="best_rejected", order=[model],
            why=f"{model} scores best on your data but stays rejected: {reason}"))
