"""Training: data loading, model and backbone loading, the techniques (feature extraction,
fine-tuning, LoRA, from scratch), heads, the training loop, text embeddings, and the run
orchestration that carries a plan out (``run.py``).
"""
