"""Evaluation: linear probes and the statistics (paired tests, intervals, corrections) every
verdict of the harness rests on.
"""
