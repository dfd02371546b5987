"""Reports: leaderboards, run comparisons with significance tests, the CI gate, plots and the HTML report.

Everything reads stored run records through the run registry (:mod:`harness.registry`); nothing re-runs a model.
Modules: :mod:`reports.leaderboard`, :mod:`reports.compare`, :mod:`reports.plots`, :mod:`reports.html`,
:mod:`reports.cli` (the ``harness runs|leaderboard|compare|gate|report`` commands). See ``reports/README.md``.
"""
