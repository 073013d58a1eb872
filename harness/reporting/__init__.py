"""Reporting: all rendering for people: the text plan, run reports in Markdown, progress
lines and plots.
"""
