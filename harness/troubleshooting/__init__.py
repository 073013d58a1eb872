"""Troubleshooting: log readers (run folders, Trainer, Lightning, Keras, JSONL), curve
analysis, diagnosis of a finished run, and the fix-and-verify loop (auto-fix).
"""
