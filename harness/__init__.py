"""The harness: carry a plan out on real data, measure it, test it statistically.

Heavy libraries (torch, transformers, peft, pandas) are imported inside the
functions that use them.
"""
