"""Benchmarks: one script per engine, each measuring it against its anchor in the same run.

Run one as ``python -m bench.<engine>`` or ``python bench/<engine>.py`` (``--help`` for its
flags); ``make bench`` runs them all. Modules named ``_*.py`` are the scripts' helpers, not
benchmarks. Method and history: ``bench/README.md``.
"""
