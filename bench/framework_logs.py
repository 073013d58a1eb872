"""Logs written by real training frameworks, with planted faults, for `tlexpert diagnose`.

Hugging Face ``Trainer`` trains a tiny BERT built from a config (2 layers,
hidden size 32, a word-level vocabulary) on a 3-class synthetic text task
whose label is carried by its words; each case writes what ``run_glue.py``
writes (``trainer.save_model()`` and ``trainer.save_state()``: config.json
and trainer_state.json). Keras is not installed here: ``keras_csv`` writes a
log byte for byte as Keras' ``CSVLogger`` writes one (``epoch`` first, the
metric names sorted, ``\\r\\n`` line ends, ``NA`` for a missing key) from a
real numpy training loop, and ``keras_history_csv`` the table
``pandas.DataFrame(history.history).to_csv()`` writes (an unnamed index
column, no epoch column).

    python bench/framework_logs.py OUT_DIR     # writes every case, runs diagnose, prints the table
"""

from __future__ import annotations

import csv
import math
import random
import sys
from pathlib import Path

try:
    from bench import _common  # noqa: F401  (puts the project on sys.path)
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLASSES = ("neg", "neu", "pos")
CUES = {"neg": ["awful", "bad", "worst", "broke", "junk"], "neu": ["ok", "average", "meh", "fine", "eh"],
        "pos": ["great", "love", "best", "awesome", "happy"]}
FILLER = ["the", "phone", "case", "it", "is", "this", "came", "today", "a", "of", "and", "box", "lamp", "use"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w for ws in CUES.values() for w in ws} | set(FILLER))]


def texts(n: int, seed: int, noise: float = 0.0) -> tuple[list[str], list[int]]:
    """``n`` short reviews; each carries two cue words among filler words, each cue of its own
    class, or with probability ``noise`` of a random class."""
    rng = random.Random(seed)
    xs, ys = [], []
    for i in range(n):
        y = i % 3
        cues = [rng.choice(CUES[CLASSES[y] if rng.random() >= noise else rng.choice(CLASSES)]) for _ in range(2)]
        words = rng.sample(FILLER, 5) + cues
        rng.shuffle(words)
        xs.append(" ".join(words))
        ys.append(y)
    return xs, ys


# case -> (training examples, epochs, learning rate, shuffle the training labels)
HF_CASES = {
    "healthy": (240, 5, 3e-3, False),
    "lr_too_high": (240, 5, 3.0, False),
    "shuffled_labels": (240, 5, 3e-3, True),
    "tiny_train_many_epochs": (9, 60, 1e-2, False),
}


def hf_trainer_run(out: Path, case: str, seed: int = 0) -> Path:
    """One Trainer run of ``case`` written to ``out``; returns ``out``. What the Trainer printed (its
    ``PrinterCallback``: one dict per log line) is kept beside the folder, in ``<out>.stdout``."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from transformers import (BertConfig, BertForSequenceClassification, BertTokenizer, PrinterCallback, Trainer,
                              TrainingArguments)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)  # a tiny model: more threads only contend
    n_train, epochs, lr, shuffle = HF_CASES[case]
    out.mkdir(parents=True, exist_ok=True)
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n")
    tok = BertTokenizer(str(vocab_file), do_lower_case=True)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=3,
                     id2label=dict(enumerate(CLASSES)), label2id={c: i for i, c in enumerate(CLASSES)})
    model = BertForSequenceClassification(cfg)
    xs, ys = texts(n_train, seed)
    if shuffle:
        random.Random(seed + 1).shuffle(ys)
    vx, vy = texts(90, 1000 + seed)

    class DS(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.enc = tok(x, padding="max_length", truncation=True, max_length=10)
            self.y = y

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {**{k: torch.tensor(v[i]) for k, v in self.enc.items()}, "labels": torch.tensor(self.y[i])}

    def accuracy(p):
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    steps_per_epoch = math.ceil(n_train / 16)
    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=16,
        per_device_eval_batch_size=64, learning_rate=lr, eval_strategy="epoch", save_strategy="no",
        logging_strategy="steps", logging_steps=max(1, steps_per_epoch // 3), report_to="none", seed=seed,
        use_cpu=True, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=DS(xs, ys), eval_dataset=DS(vx, vy),
                      compute_metrics=accuracy)
    import contextlib

    assert any(isinstance(c, PrinterCallback) for c in trainer.callback_handler.callbacks)
    with open(out.parent / f"{out.name}.stdout", "w") as fh, contextlib.redirect_stdout(fh):
        trainer.train()  # with disable_tqdm the PrinterCallback prints every log line: the printed log
    trainer.save_model()
    trainer.save_state()
    for f in ("model.safetensors", "training_args.bin", "vocab.txt"):
        (out / f).unlink(missing_ok=True)  # only the logs and the config matter here
    return out


# --- Keras-format logs from a real (numpy) softmax-regression training loop


def _softmax_run(epochs: int, lr: float, n_train: int, shuffle: bool, seed: int = 0) -> list[dict]:
    """Per-epoch logs of full-batch softmax regression on bag-of-words features, as Keras names them."""
    import numpy as np

    index = {w: i for i, w in enumerate(VOCAB)}

    def feats(x):
        m = np.zeros((len(x), len(VOCAB)))
        for r, t in enumerate(x):
            for w in t.split():
                m[r, index.get(w, 1)] += 1.0
        return m

    xs, ys = texts(n_train, seed, noise=0.5)
    if shuffle:
        random.Random(seed + 1).shuffle(ys)
    vx, vy = texts(150, 1000 + seed, noise=0.5)
    X, Y, VX, VY = feats(xs), np.array(ys), feats(vx), np.array(vy)
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.01, (len(VOCAB), 3))

    def loss_acc(X_, Y_):
        z = X_ @ W
        z = z - z.max(1, keepdims=True)
        with np.errstate(over="ignore", invalid="ignore"):
            p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            loss = float(-np.mean(np.log(p[np.arange(len(Y_)), Y_] + 1e-12)))
        return loss, float((z.argmax(1) == Y_).mean()), p

    rows = []
    for _ in range(epochs):
        _, _, p = loss_acc(X, Y)
        g = p.copy()
        g[np.arange(len(Y)), Y] -= 1
        with np.errstate(over="ignore", invalid="ignore"):
            W = W - lr * X.T @ g / len(Y)
        tl, ta = loss_acc(X, Y)[:2]
        vl, va = loss_acc(VX, VY)[:2]
        rows.append({"accuracy": ta, "loss": tl, "val_accuracy": va, "val_loss": vl, "learning_rate": lr})
    return rows


KERAS_CASES = {
    "healthy": (30, 0.3, 240, False),
    "shuffled_labels": (30, 0.3, 240, True),
    "tiny_train_many_epochs": (300, 1.0, 6, False),
}


def keras_csv(path: Path, rows: list[dict], drop_val_from: int = 0) -> Path:
    """A file as ``keras.callbacks.CSVLogger`` writes it: ``epoch`` then the sorted keys, ``\\r\\n``
    line ends (csv.excel), ``NA`` where an epoch's logs lack a key (``drop_val_from``: from that
    epoch on, no validation ran)."""
    keys = sorted(rows[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["epoch", *keys], dialect=csv.excel)
        w.writeheader()
        for e, r in enumerate(rows):
            if drop_val_from and e >= drop_val_from:
                r = {k: v for k, v in r.items() if not k.startswith("val_")}
            w.writerow({"epoch": e, **{k: r.get(k, "NA") for k in keys}})
    return path


def keras_history_csv(path: Path, rows: list[dict]) -> Path:
    """``pandas.DataFrame(history.history).to_csv(path)``: an unnamed index column, no epoch column."""
    keys = list(rows[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", *keys])
        for e, r in enumerate(rows):
            w.writerow([e, *[r[k] for k in keys]])
    return path


def keras_run(path: Path, case: str, history: bool = False) -> Path:
    epochs, lr, n, shuffle = KERAS_CASES[case]
    rows = _softmax_run(epochs, lr, n, shuffle)
    return keras_history_csv(path, rows) if history else keras_csv(path, rows)


# --- PyTorch Lightning: CSVLogger's metrics.csv and hparams.yaml from a real Lightning Trainer

LIGHTNING_CASES = {  # case -> (training examples, epochs, learning rate)
    "healthy": (240, 12, 0.5),
    "lr_too_high": (240, 12, 500.0),
    "tiny_train_many_epochs": (6, 150, 1.0),
}


def lightning_run(out: Path, case: str, seed: int = 0) -> Path:
    """A Lightning run of ``case`` (softmax regression on bag-of-words, SGD) logged by CSVLogger to
    ``out/lightning_logs/version_0``; returns that folder."""
    import lightning as L
    import numpy as np
    import torch
    from lightning.pytorch.loggers import CSVLogger

    torch.set_num_threads(1)
    n_train, epochs, lr = LIGHTNING_CASES[case]
    index = {w: i for i, w in enumerate(VOCAB)}

    def feats(x):
        m = np.zeros((len(x), len(VOCAB)), dtype=np.float32)
        for r, t in enumerate(x):
            for w in t.split():
                m[r, index.get(w, 1)] += 1.0
        return torch.from_numpy(m)

    xs, ys = texts(n_train, seed, noise=0.5)
    vx, vy = texts(150, 1000 + seed, noise=0.5)
    train = torch.utils.data.TensorDataset(feats(xs), torch.tensor(ys))
    val = torch.utils.data.TensorDataset(feats(vx), torch.tensor(vy))

    class Model(L.LightningModule):
        def __init__(self, lr: float, batch_size: int, num_classes: int):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Linear(len(VOCAB), num_classes)

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            z = self.net(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(z, y))
            self.log("val_acc", (z.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    L.seed_everything(seed, verbose=False)
    model = Model(lr=lr, batch_size=32, num_classes=3)
    trainer = L.Trainer(max_epochs=epochs, logger=CSVLogger(str(out), name="lightning_logs", version=0),
                        accelerator="cpu", devices=1, enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1)
    trainer.fit(model, torch.utils.data.DataLoader(train, batch_size=32, shuffle=True),
                torch.utils.data.DataLoader(val, batch_size=150))
    return out / "lightning_logs" / "version_0"


def main(out: str) -> None:
    import json
    import time

    from click.testing import CliRunner

    from cli import main as cli_main

    root = Path(out)
    cases = []
    for case in HF_CASES:
        t = time.perf_counter()
        d = hf_trainer_run(root / "hf" / case, case)
        cases.append((f"Trainer: {case}", d, time.perf_counter() - t))
    try:
        import lightning  # noqa: F401

        for case in LIGHTNING_CASES:
            cases.append((f"Lightning CSVLogger: {case}", lightning_run(root / "lightning" / case, case), 0.0))
    except ImportError:
        print("lightning is not installed: its cases are left out", file=sys.stderr)
    for case in KERAS_CASES:
        cases.append((f"Keras CSVLogger: {case}", keras_run(root / "keras" / f"{case}.csv", case), 0.0))
        cases.append((f"Keras history CSV: {case}",
                      keras_run(root / "keras_history" / f"{case}.csv", case, history=True), 0.0))
    print("| log | diagnose says | first fix |")
    print("|---|---|---|")
    for name, path, _ in cases:
        r = CliRunner().invoke(cli_main, ["diagnose", str(path), "--format", "json"])
        rep = json.loads(r.stdout)
        said = ", ".join(f"{d['pitfall']} ({d['confidence']:.2f})" for d in rep["diagnoses"]) or "healthy"
        fix = rep["diagnoses"][0]["fixes"][0]["summary"] if rep["diagnoses"] and rep["diagnoses"][0]["fixes"] else "-"
        print(f"| {name} | {said} | {fix} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "framework-logs")
