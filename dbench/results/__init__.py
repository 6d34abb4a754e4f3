"""Reports of results: the printed score table and the plots of a result.

* :func:`format_scores` -- the plain-text table ``dbench evaluate`` prints.
* :func:`write_plots` -- score bars, DCI importances and probe learning curves as PNG files.

Importing this package does not import matplotlib (the plots import it when they are drawn).
"""

from dbench.results.plots import write_plots
from dbench.results.table import format_scores, printed_rows, score_rows

__all__ = ["format_scores", "printed_rows", "score_rows", "write_plots"]
