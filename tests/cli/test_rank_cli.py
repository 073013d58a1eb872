"""rank-models and consult --data on bad input: one ``Error:`` line, exit status 2,
no model loaded; consult without --data stays free of heavy imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[2]


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert out.count("\n") == 0 and out.startswith("Error: "), out
    assert "Traceback" not in out
    return out


@pytest.fixture
def data(tmp_path) -> Path:
    p = tmp_path / "tweets.csv"
    p.write_text("text,label\n"
                 "\"omg this is the best day ever!!\",positive\n"
                 "\"worst customer service, never again\",negative\n"
                 "\"the bus is late again smh\",negative\n"
                 "\"new phone who dis\",neutral\n", encoding="utf-8")
    return p


def test_missing_data_file(tmp_path):
    out = error_line(invoke(["rank-models", "--data", tmp_path / "nope.csv", "--candidates", "all-MiniLM-L6-v2"]))
    assert "nope.csv: no such data file" in out


def test_single_class(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("text,label\nlove it,pos\ngreat,pos\n", encoding="utf-8")
    out = error_line(invoke(["rank-models", "--data", p, "--candidates", "all-MiniLM-L6-v2"]))
    assert "single class ('pos')" in out


def test_missing_label_column(data):
    out = error_line(invoke(["rank-models", "--data", data, "--candidates", "all-MiniLM-L6-v2",
                             "--label-column", "sentiment"]))
    assert "'sentiment' column" in out and "text, label" in out


def test_bad_output_and_plot_suffixes(data):
    out = error_line(invoke(["rank-models", "--data", data, "--candidates", "x", "-o", "rank.parquet"]))
    assert "must end in .json, .csv or .md" in out and "'.parquet'" in out
    out = error_line(invoke(["rank-models", "--data", data, "--candidates", "x", "--plot", "rank.jpg"]))
    assert "must end in .png, .svg or .pdf" in out


def test_empty_candidates_and_unknown_estimator(data):
    out = error_line(invoke(["rank-models", "--data", data, "--candidates", " , "]))
    assert "at least one model" in out
    out = error_line(invoke(["rank-models", "--data", data, "--candidates", "all-MiniLM-L6-v2",
                             "--estimators", "logme,leep"]))
    assert "'estimators' option" in out and "leep" in out and "linear_probe" in out


def test_bad_layer_choice(data):
    r = invoke(["rank-models", "--data", data, "--candidates", "all-MiniLM-L6-v2", "--layer", "first"])
    assert r.exit_code == 2 and "'first' is not one of 'auto', 'last', 'mean', 'best'" in r.output


def test_consult_rank_candidates_need_data():
    out = error_line(invoke(["consult", "--task", "text_classification", "--dataset-size", "100", "--no-input",
                             "--rank-candidates", "all-MiniLM-L6-v2"]))
    assert "--rank-candidates needs --data" in out


def test_consult_data_single_class(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("text,label\nlove it,pos\n", encoding="utf-8")
    out = error_line(invoke(["consult", "--data", p, "--no-input"]))
    assert "single class" in out


def test_rank_models_help_and_consult_stay_light():
    code = ("import sys, cli\n"
            "for args in (['rank-models', '--help'], ['consult', '--task', 'text_classification',"
            " '--dataset-size', '100', '--no-input', '--format', 'json']):\n"
            "    cli.main(args, standalone_mode=False)\n"
            "print(sorted(m for m in ('torch', 'transformers', 'pandas', 'sklearn') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "TLEXPERT_KNOWLEDGE"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
