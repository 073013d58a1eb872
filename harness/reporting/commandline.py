"""The command line's parts that every command shares: error mapping (one ``Error:`` line, exit
status 2, never a traceback), parameter types, option groups, output formats and the knowledge base
the ``--knowledge`` option names. ``cli.py`` composes them into commands."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import re
import sys
from typing import Any, Optional

import click

from harness.training.registry import REGISTRY
from knowledge.reading import show
from knowledge.schema import KnowledgeError


FORMATS = ("text", "json", "yaml")


class InputError(click.ClickException):
    """Bad input: one line, exit status 2."""

    exit_code = 2


def handle_errors(fn):
    """Map domain errors to ``Error: ...`` with exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not _stdout_open():
            raise InputError("standard output is closed: what this command prints would go nowhere; redirect "
                             "it to a file (> out.txt) or to /dev/null instead of closing it")
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a full disk or a failed device shows here, not after the exit status is set
            return result
        except KnowledgeError as exc:  # user text in the message is escaped, a huge one cut
            raise InputError(show(str(exc), 4000)) from None
        except MemoryError:
            raise InputError("out of memory: the input is larger than this machine can hold; give a smaller "
                             "file (or fewer rows), or run on a machine with more memory") from None
        except RecursionError:  # the class of inputs nested past any sensible depth, wherever they are read
            raise InputError("the input is nested too deeply to read (folders, JSON or YAML); give a flatter "
                             "file or name the files directly") from None
        except BrokenPipeError:  # stdout closed early (`tlexpert ... | head`): say so once, no traceback
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more reaches the pipe
            raise InputError("standard output was closed before the output was written") from None
        except UnicodeEncodeError as exc:
            raise InputError(f"the output cannot be written in this terminal's encoding "
                             f"({sys.stdout.encoding}): {exc.reason}; set PYTHONIOENCODING=utf-8") from None
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            with contextlib.suppress(OSError):  # nothing more is tried on a failed standard output
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            where = show(str(exc.filename)) if exc.filename else "standard output"
            raise InputError(f"writing {where} failed: {exc.strerror or exc}") from None

    return wrapper


# a write that failed for want of space or a working device: one Error line, never a traceback
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EBADF, errno.EROFS, errno.EFBIG}


def _stdout_open() -> bool:
    """False when the process was started with its standard output closed (``>&-``)."""
    if sys.stdout is None:
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return True  # not a file descriptor (captured output): open as far as anyone can tell
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def get_kb(ctx: click.Context):
    from knowledge.loader import extra_dirs, get_kb as load

    root = ctx.find_root()
    dirs = root.params.get("knowledge") or ()
    try:
        return load(extra_dirs(dirs))
    except KnowledgeError as exc:
        raise InputError(show(str(exc), 4000)) from None


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str)
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def warn_implausible(scenario: dict) -> None:
    """Valid but inconsistent or implausible scenario values: one ``Warning:`` line each, on stderr."""
    from rules.scenario import scenario_warnings

    for w in scenario_warnings(scenario):
        click.echo(f"Warning: {show(w, 300)}", err=True)


class FiniteFloat(click.FloatRange):
    """A FloatRange that refuses nan and inf (click's range checks let nan through)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


def format_option(default="text", choices=FORMATS):
    return click.option("--format", "fmt", type=click.Choice(choices), default=default,
                        show_default=True, help="Output format.")


class Group(click.Group):
    """The command group, whose own output (--help, --version, usage errors) fails as cleanly as a
    command's: a full disk or a dead device on stdout or stderr is exit status 2, never a traceback."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            with contextlib.suppress(OSError):
                sys.stderr.write(f"Error: writing the output failed: {exc.strerror or exc}\n")
                sys.stderr.flush()
            os._exit(2)  # nothing more can be written: leave without the interpreter's own flush at exit


def parse_count(text: Optional[str], name: str) -> Optional[int]:
    if text is None:
        return None
    t = text.strip().upper()
    mult = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if mult != 1 else t) * mult
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise InputError(f"The '{name}' option must be a count such as 30M or 1.5B. Got {text!r} instead.")
    if value <= 0:
        raise InputError(f"The '{name}' option must be a positive count. Got {text!r} instead.")
    return int(value)


class BaselineCommand(click.Command):
    """``--baseline A B C`` takes every value up to the next option (a shell glob expands to
    several), as well as ``--baseline A --baseline B``."""

    def parse_args(self, ctx, args):
        out, i = [], 0
        while i < len(args):
            a = args[i]
            if a == "--":
                out += args[i:]
                break
            if a == "--baseline":
                j = i + 1
                vals = []
                while j < len(args) and not (args[j].startswith("-") and len(args[j]) > 1):
                    vals.append(args[j])
                    j += 1
                if not vals:
                    out.append(a)  # click reports the missing value
                for v in vals:
                    out += ["--baseline", v]
                i = j
                continue
            out.append(a)
            i += 1
        return super().parse_args(ctx, out)


class Duration(click.ParamType):
    """A wall time: seconds, or a number with s, m or h (90, 90s, 10m, 1.5h)."""

    name = "duration"
    UNITS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    MAX_SECONDS = 30 * 86400

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        m = re.fullmatch(r"\s*(\d{1,12}(?:\.\d{1,12})?)\s*(s|sec|m|min|h)?\s*", str(value).lower())
        seconds = float(m.group(1)) * self.UNITS[m.group(2) or ""] if m else 0.0
        if not 0 < seconds <= self.MAX_SECONDS:
            self.fail(f"expected a positive wall time such as 90s, 10m or 1.5h (at most 30 days). Got "
                      f"{show(str(value), 40)} instead.", param, ctx)
        return seconds


def split_candidates(values: tuple) -> list[str]:
    """--candidates A,B --candidates C -> [A, B, C] (order kept, duplicates dropped)."""
    out = [c.strip() for v in values for c in v.split(",")]
    return list(dict.fromkeys(c for c in out if c))


def _plain(v):
    """A YAML/JSON tree as plain dicts and lists (the loader's line-tracking types dropped)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def rank_options(fn):
    opts = [
        click.option("--text-column", default="text", show_default=True),
        click.option("--label-column", default="label", show_default=True),
        click.option("--layer", type=click.Choice(["auto", "last", "mean", "best"]), default="auto", show_default=True,
                     help="Features scored: the last layer, the mean of all layers, or each estimator's "
                          "best layer. auto: the last layer when the plan's technique is feature extraction "
                          "(measured to order candidates as training them does), else the mean of layers "
                          "(see BENCHMARKS.md)."),
        click.option("--estimators", default="logme,hscore,knn,linear_probe", show_default=True,
                     help="Comma-separated estimators: logme, hscore, knn, linear_probe."),
        click.option("--max-examples", type=click.IntRange(4, 1000000),
                     help="Score at most this many examples (stratified sample; default from the "
                          "knowledge base's rank_max_examples)."),
        click.option("--max-length", type=click.IntRange(8, 4096), default=128, show_default=True),
        click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                     help="Seed of the sample and of the probe's folds."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
                     help="Candidates scored in parallel on local processes."),
        click.option("--budget", type=Duration(), metavar="TIME",
                     help="Wall-time budget for scoring (90s, 10m, 1.5h): fewer examples where the "
                          "knowledge base's measured scoring rate calls for it, and candidates that would "
                          "overrun it are skipped, each saying why."),
        click.option("--scheduler", metavar="ADDRESS", help="Score on an existing Dask cluster (tcp://host:port)."),
        click.option("--no-cache", is_flag=True,
                     help="Recompute embeddings and scores instead of reusing finished ones."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def run_options(fn):
    opts = [
        click.option("--train", type=str, metavar="PATH",
                     help="Training data: CSV or JSONL text; an image folder or .npz arrays for image tasks."),
        click.option("--validation", type=str, metavar="FILE", help="Validation data (else split from --train)."),
        click.option("--test", type=str, metavar="FILE", help="Test data (else split from --train)."),
        click.option("--text-column", default="text", show_default=True),
        click.option("--label-column", default="label", show_default=True),
        click.option("--model", metavar="NAME_OR_PATH",
                     help="Text: a catalog name or a local Hugging Face folder (default all-MiniLM-L6-v2). "
                          "Images: the built-in small CNN (default), torchvision:<arch>, timm:<arch>, a catalog "
                          "name such as resnet-18, a local timm folder, or a weights file for the small CNN."),
        click.option("--weights", type=str, metavar="FILE",
                     help="Local weights for a torchvision/timm backbone: safetensors, or a state dict "
                          "(read with torch.load(weights_only=True)). With no --model, the plan's model."),
        click.option("--image-size", type=click.IntRange(8, 1024), metavar="PIXELS",
                     help="Input size for a backbone (default: its weights' own, e.g. 224)."),
        click.option("--technique", "techniques", multiple=True,
                     type=click.Choice(list(REGISTRY)),
                     help="Technique(s) to run (default: the plan's), each with its own recipe from the plan. "
                          "Repeatable."),
        click.option("--seeds", type=click.IntRange(1, 100), help="Override the plan's evaluation.seeds."),
        click.option("--out", type=str, metavar="DIR", help="Run directory (default runs/<timestamp>-<name>)."),
        click.option("--force", is_flag=True, help="Write into an --out folder that already holds a run's results."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--retention-data", type=str, metavar="FILE",
                     help="A second labeled task for the forgetting probe (linear probe before/after): "
                          "CSV/JSONL text, or for images a folder or .npz (overrides the plan's "
                          "evaluation.retention_data). For a causal-LM plan: general text (.txt) or "
                          "instructions (.jsonl), several comma-separated."),
        click.option("--intermediate-data", type=str, metavar="FILE",
                     help="Labeled informal text for an intermediate fine-tuning stage (when the plan asks)."),
        click.option("--unlabeled-data", type=str, metavar="FILE",
                     help="Extra in-domain text for a masked-LM stage (when the plan asks)."),
        click.option("--head", type=click.Choice(["linear", "mlp"]),
                     help="Feature-extraction head: linear, or an MLP with one hidden layer of 256."),
        click.option("--epochs", type=click.IntRange(1, 1000), help="Override the plan's epochs."),
        click.option("--learning-rate", type=FiniteFloat(0, 10, min_open=True), help="Override the learning rate."),
        click.option("--batch-size", type=click.IntRange(1, 4096), help="Override the batch size."),
        click.option("--max-length", type=click.IntRange(8, 4096),
                     help="Tokens per text input (default: the plan's memory.sequence_tokens, what its memory "
                          "estimate assumed: the scenario's sequence_length, else 128, 512 for generation)."),
        click.option("--replay-ratio", type=FiniteFloat(0, 4), metavar="R",
                     help="A causal-LM plan: mix R general examples per training example into training "
                          "(rehearsal), drawn from the --retention-data items the forgetting test does not "
                          "measure. Overrides the plan's replay_ratio."),
        click.option("--packing/--no-packing", default=None,
                     help="A causal-LM plan: concatenate training examples into blocks of --max-length tokens "
                          "instead of truncating each one (overrides the plan's packing)."),
        click.option("--prompt-loss/--no-prompt-loss", default=None,
                     help="A causal-LM plan: count the prompt's tokens in the loss too (overrides the plan's "
                          "prompt_loss; default: the response only)."),
        click.option("--alpha", type=FiniteFloat(0, 1, min_open=True, max_open=True),
                     help="Override the plan's evaluation.alpha (significance level of every test)."),
        click.option("--no-cache", is_flag=True, help="Recompute embeddings instead of using the cache."),
        format_option(choices=("text", "json")),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn
