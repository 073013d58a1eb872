"""The first-principles training-memory model (knowledge.estimates.transformer_memory) against
published figures.

    .venv/bin/python bench/bench_memory.py

Published figures: LLaMA-Factory's hardware table (README, LLaMA 7B/13B/30B/65B: LoRA 16-bit, QLoRA 8- and
4-bit; their settings are not stated with the table: batch 1 with gradient checkpointing, the project's
defaults, is assumed here) and the QLoRA paper (Dettmers et al. 2023: 33B on one 24 GB GPU, 65B on one 48 GB
GPU, batch 1 with gradient checkpointing and paged optimizers). The model's inputs are only what the catalog
holds for a model (parameters, layers; the hidden size derived from P ~ 12 L h^2), the technique's bytes per
parameter from the knowledge base, a 32,000-token vocabulary, the 1 GiB training context; sequences of 512
tokens; LoRA adapters of rank 8 on every linear layer (LLaMA-Factory's defaults, lora_rank 8 and
lora_target all) with their 32-bit AdamW state; for 4/8-bit weights the embeddings and output head stay in
16-bit. Prints a Markdown table with the ratio estimate / published.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (model, parameters, layers)
LLAMA = [("LLaMA-7B", 6.74e9, 32), ("LLaMA-13B", 13.0e9, 40), ("LLaMA-30B", 32.5e9, 60), ("LLaMA-65B", 65.2e9, 80)]
# technique id, bits label, published GB per model (LLaMA-Factory README hardware table)
PUBLISHED = [("lora", "LoRA 16-bit", [16, 32, 80, 160]),
             ("qlora8", "QLoRA 8-bit", [10, 16, 40, 80]),
             ("qlora", "QLoRA 4-bit", [6, 12, 24, 48])]


def main() -> int:
    from knowledge import get_kb
    from knowledge.estimates import ASSUMED_VOCAB, transformer_memory

    kb = get_kb()
    ctx = kb.threshold("training_context_gb")
    bpp = {"lora": kb.techniques["lora"].memory_bytes_per_param, "qlora": kb.techniques["qlora"].memory_bytes_per_param,
           "qlora8": 1.05}  # 8-bit weights plus quantisation constants (LLM.int8): not a catalog technique
    print("| method | model | published (GB) | estimate, batch 1 x 512, checkpointing (GiB) | ratio | "
          "without checkpointing | ratio |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for tech, label, figures in PUBLISHED:
        for (name, params, layers), pub in zip(LLAMA, figures):
            est = {ck: transformer_memory(params, layers, bpp[tech], batch=1, seq=512, backprop=True, checkpointing=ck,
                                          vocab=ASSUMED_VOCAB, overhead_gb=ctx, adapter_rank=8,
                                          adapter_matrices="all")["total"] for ck in (True, False)}
            pub_gib = pub * 1e9 / 2**30
            ratios.append(est[True] / pub_gib)
            print(f"| {label} | {name} | {pub} | {est[True]:.1f} | {est[True] / pub_gib:.2f} | {est[False]:.1f} | "
                  f"{est[False] / pub_gib:.2f} |")
    for name, params, layers, gpu in (("Guanaco-33B (QLoRA paper)", 32.5e9, 60, 24), ("Guanaco-65B (QLoRA paper)", 65.2e9, 80, 48)):
        est = transformer_memory(params, layers, bpp["qlora"], batch=1, seq=512, backprop=True, checkpointing=True,
                                 vocab=ASSUMED_VOCAB, overhead_gb=ctx, adapter_rank=64,
                                 adapter_matrices="all")["total"]
        print(f"| QLoRA 4-bit, fits one {gpu} GB GPU | {name} | < {gpu} | {est:.1f} | "
              f"{est / (gpu * 1e9 / 2**30):.2f} | | |")
    ratios.sort()
    print(f"\nratio estimate / published over the {len(ratios)} table cells: median {ratios[len(ratios) // 2]:.2f}, "
          f"range {ratios[0]:.2f}-{ratios[-1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
