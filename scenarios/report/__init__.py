"""The board report (report.html) and the plotting functions.

Every run writes report.html beside report.json and manifest.json
(:func:`scenarios.outputs.write_outputs`); ``trimtab report RUN_DIR`` draws it
again from the run folder (:func:`scenarios.report.folder.rerender`). The page
is one offline file: inline CSS and SVG, no script, no request of any kind.

Modules: :mod:`~scenarios.report.svg` (the chart kit),
:mod:`~scenarios.report.figure` (:class:`Figure`, what a chart becomes),
:mod:`~scenarios.report.charts` (one function per chart, from report.json's
data), :mod:`~scenarios.report.data` (what the charts need beyond
``res.report()``: report.json's ``charts``), :mod:`~scenarios.report.html`
(the page), :mod:`~scenarios.report.plot` (figures of trimtab objects for
notebooks, drawn by the same chart functions) and
:mod:`~scenarios.report.folder` (re-rendering a run folder).
"""

from scenarios.report.html import render_report
from scenarios.report.plot import (
    plot_allocation,
    plot_backtest,
    plot_frontier,
    plot_montecarlo,
    plot_risk,
    plot_stress,
)
from scenarios.report.svg import Figure

__all__ = [
    "Figure",
    "plot_allocation",
    "plot_backtest",
    "plot_frontier",
    "plot_montecarlo",
    "plot_risk",
    "plot_stress",
    "render_report",
]
