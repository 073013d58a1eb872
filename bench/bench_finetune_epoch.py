"""One fine-tuning epoch of all-MiniLM-L6-v2: the harness vs Hugging Face Trainer.

    python bench/bench_finetune_epoch.py [--data ../shared/data/tweeteval/sentiment_train.csv]
                                         [--n 2000] [--repeats 2]

Same data (the first --n rows), batch size 32, max length 128, threads, one
epoch, on the CPU, interleaved and repeated (medians):
  harness:         harness.training.techniques.run_transformer (fine_tuning, all layers
                   trainable, length-bucketed batches shuffled as buckets),
                   model load and tokenization included
  trainer_default: Trainer with its defaults (random order, DataCollatorWithPadding)
  trainer_grouped: Trainer with length grouping (group_by_length /
                   train_sampling_strategy="group_by_length")
The Trainer timings cover trainer.train() only (model already loaded, data
already tokenized), which favours Trainer.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import tempfile
import time

from _common import TWEETEVAL  # noqa: E402  (puts the project on sys.path)
DEFAULT = TWEETEVAL / "sentiment_train.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()

    import torch
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    from harness.training.data import TextData, load_text
    from harness.training.models import load_tokenizer, quiet_transformers, resolve_model
    from harness.training.techniques import run_transformer
    from knowledge import get_kb

    quiet_transformers()
    full = load_text(args.data)
    train = TextData(full.texts[: args.n], full.labels[: args.n], full.classes)
    tiny = TextData(full.texts[-16:], full.labels[-16:], full.classes)
    path = resolve_model("all-MiniLM-L6-v2", get_kb())[1]
    tok = load_tokenizer(path)
    enc = tok(train.texts, truncation=True, max_length=args.max_length)
    rows = [{"input_ids": i, "attention_mask": m, "labels": y}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], train.y)]
    tokens = sum(len(i) for i in enc["input_ids"])

    def harness_epoch():
        hyper = {"learning_rate": 2e-5, "epochs": 1, "frozen_layers": 0, "batch_size": args.batch_size,
                 "warmup_ratio": 0.0, "weight_decay": 0.0}
        t = time.perf_counter()
        run_transformer(path, train, tiny, tiny, 0, hyper, technique="fine_tuning",
                        max_length=args.max_length, tokenizer=tok)
        return time.perf_counter() - t

    params = inspect.signature(TrainingArguments).parameters

    def trainer_epoch(grouped: bool):
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(train.classes))
        kw = dict(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size,
                  num_train_epochs=1, report_to=[], save_strategy="no", logging_strategy="no",
                  use_cpu=True, disable_tqdm=True, seed=0, dataloader_num_workers=0)
        if grouped:
            if "group_by_length" in params:
                kw["group_by_length"] = True
            else:
                kw["train_sampling_strategy"] = "group_by_length"
        trainer = Trainer(model=model, args=TrainingArguments(**kw), train_dataset=rows,
                          data_collator=DataCollatorWithPadding(tok))
        t = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t

    times = {"harness": [], "trainer_default": [], "trainer_grouped": []}
    for _ in range(args.repeats):
        times["harness"].append(harness_epoch())
        times["trainer_default"].append(trainer_epoch(False))
        times["trainer_grouped"].append(trainer_epoch(True))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.n} texts ({tokens / args.n:.1f} tokens each on average), batch {args.batch_size}, "
          f"max_length {args.max_length}, {torch.get_num_threads()} threads, {args.repeats} repeats")
    for k, v in times.items():
        print(f"  {k:<16} median {med[k]:.1f} s   runs: {', '.join(f'{x:.1f}' for x in v)}")
    print(f"harness / Trainer default: {med['harness'] / med['trainer_default']:.2f}x  (target <= 0.8)")
    print(f"harness / Trainer grouped: {med['harness'] / med['trainer_grouped']:.2f}x")


if __name__ == "__main__":
    main()
