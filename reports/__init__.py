"""Reports: leaderboards, run comparisons with significance tests, the CI gate, plots and the HTML report.

Everything reads stored run records through the run registry (:mod:`harness.registry`); nothing re-runs a model.
Modules: :mod:`reports.leaderboard`, :mod:`reports.compare`, :mod:`reports.plots`, :mod:`reports.html` (the
site's index), :mod:`reports.site` (run and comparison pages), :mod:`reports.site_assets` (its CSS and script),
:mod:`reports.site_lineage` (what training lineage leads to), :mod:`reports.site_server` (``harness view``),
:mod:`reports.cli` (the ``harness runs|leaderboard|compare|gate|report|view`` commands). See ``reports/README.md``.
"""
