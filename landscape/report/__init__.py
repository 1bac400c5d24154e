"""Reports: HTML pages with figures for scans (:func:`write_report`) and for the studies.

matplotlib is imported lazily and used without pyplot (no backend is chosen and
no global style is changed); plotting functions take ``ax=None`` and return the
Axes they drew on.
"""

from ._mpl import new_axes, new_figure, save_figure
from ._page import Figure, Section, Table, json_ready, write_json, write_page
from ._scan import report_data, write_report

__all__ = ["write_report", "report_data", "write_page", "write_json", "json_ready", "Section", "Table", "Figure",
           "new_figure", "new_axes", "save_figure"]
