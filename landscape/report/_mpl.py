"""matplotlib without pyplot: figures that touch no global state.

matplotlib is imported when a figure is made, never with the library; figures
are ``matplotlib.figure.Figure`` objects drawn by the Agg canvas, so no backend
is selected and no rcParams or style is changed.
"""

from pathlib import Path

__all__ = ["new_figure", "save_figure", "new_axes"]

DPI = 110


def new_figure(width=6.4, height=4.0, *, nrows=1, ncols=1, **subplots):
    """A pyplot-free Figure with a grid of Axes: ``fig, ax = new_figure(...)``."""
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, **subplots)
    return fig, axes


def new_axes(ax=None, width=6.4, height=4.0):
    """`ax` itself, or the Axes of a new pyplot-free figure."""
    if ax is not None:
        return ax
    return new_figure(width, height)[1]


def save_figure(fig, out_dir, name, *, caption="", alt=""):
    """Save `fig` (a Figure, or an Axes of one) as ``out_dir/name`` and return a page Figure.

    The format follows the suffix of `name` (``.png`` or ``.svg``).
    """
    from ._page import Figure

    fig = getattr(fig, "figure", fig)
    while getattr(fig, "figure", fig) is not fig:        # subfigures: the root figure
        fig = fig.figure
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = Path(name).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"figure name {name!r} must end in .png or .svg")
    fig.savefig(out_dir / name, dpi=DPI, metadata={"Software": None} if suffix == ".png" else None)
    return Figure(path=str(name), caption=caption, alt=alt or caption)
