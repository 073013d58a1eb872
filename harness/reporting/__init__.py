"""Reporting: what people see and type. All rendering (the text plan, run reports in Markdown,
progress lines, plots, the catalog listings) and the command line's shared parts: error mapping,
parameter types and option groups (commandline.py), the consultation's questions (interview.py).
"""
