"""What the benchmark scripts share: the project root on sys.path, the TweetEval folder, and reading,
sampling and writing its labeled CSV rows."""

from __future__ import annotations

import csv
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data/tweeteval beside the project; TLEXPERT_TWEETEVAL points elsewhere (e.g. from a second checkout)
TWEETEVAL = Path(os.environ.get("TLEXPERT_TWEETEVAL") or ROOT.parent / "shared" / "data" / "tweeteval")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def read_rows(path: Path) -> list[tuple[str, str]]:
    """(text, label) rows of a TweetEval-style CSV file."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        return [(r["text"], r["label"]) for r in csv.DictReader(fh)]


def sample(rows, n: int, seed: int) -> list:
    """``n`` rows drawn without replacement, the same for the same seed."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def write_csv(path: Path, rows) -> str:
    """Write (text, label) rows as a CSV file with a header; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return str(path)
