"""`make bench`: each figure beside a baseline measured in the same run.

Every ``bench_<name>.py`` module here exposes ``TITLE`` and ``run(quick: bool) -> list[Figure]``
(see :mod:`benchmarks._figures`); ``python -m benchmarks`` finds them, runs them, prints one
table and writes ``benchmarks/RESULTS.md``.
"""
