"""The harness: carry a plan out on real data, measure it, test it statistically, and render
plans and runs for people (render.py, report.py).

Heavy libraries (torch, transformers, peft, pandas) are imported inside the
functions that use them.
"""
