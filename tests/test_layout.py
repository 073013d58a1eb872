"""The layout's invariants (bench/check_layout.py): no import cycle among the project's modules, no file
over 500 lines outside the statistics module, no technique-name comparison outside the technique
registry, no plan read as a dict outside the file boundary, no threshold read by a name the knowledge base does not
define."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check_layout():
    spec = importlib.util.spec_from_file_location("check_layout", ROOT / "bench" / "check_layout.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_layout_invariant_holds(capsys):
    assert _check_layout().main() == 0, capsys.readouterr().out


def test_the_checks_see_what_they_forbid(tmp_path):
    """Each check catches its own kind of line (a check that can find nothing proves nothing)."""
    cl = _check_layout()
    f = tmp_path / "bad.py"
    f.write_text('def f(t, plan):\n'
                 '    if t == "lora":\n'
                 '        pass\n'
                 '    techs = ("fine_tuning", "lora")\n'
                 '    return plan["hyperparameters"], plan.get("technique"), Technique(value="lora")\n')
    assert cl.technique_comparisons(f, cl.technique_ids()) == [2, 4, 5]
    assert cl.plan_dict_reads(f) == [5]
    assert cl.cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    g = tmp_path / "th.py"
    g.write_text('def f(kb, th):\n'
                 '    return kb.threshold("default_seeds"), th["spike_factor"], th.get("no_such_threshold", 1)\n')
    reads = cl.threshold_reads(g)
    assert sorted(reads) == [(2, "default_seeds"), (2, "no_such_threshold"), (2, "spike_factor")]
    assert [x for _, x in reads if x not in cl.threshold_ids()] == ["no_such_threshold"]
