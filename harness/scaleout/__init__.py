"""Scale-out: ``batch`` (many scenarios, one table) and the one fan-out helper (serial,
processes or a Dask cluster) that runs work in parallel.
"""
