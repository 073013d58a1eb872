"""What the benchmark scripts share: the project root on sys.path and the TweetEval folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data/tweeteval beside the project; TLEXPERT_TWEETEVAL points elsewhere (e.g. from a second checkout)
TWEETEVAL = Path(os.environ.get("TLEXPERT_TWEETEVAL") or ROOT.parent / "shared" / "data" / "tweeteval")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
