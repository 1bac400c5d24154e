"""HTML pages from a Jinja2 template: the scan report and the study reports share one layout.

A page is a title, a summary (label/value pairs) and a list of :class:`Section`
objects, each holding paragraphs of text, :class:`Table` objects and
:class:`Figure` references.  Every string is escaped by the template engine
(``autoescape``): nothing a user passes in (a model name, a config value, a
caption) can inject markup.
"""

import dataclasses
import datetime
import json
import os
import shutil
from pathlib import Path

import numpy as np

__all__ = ["Section", "Table", "Figure", "write_page", "write_json", "json_ready"]

_TEMPLATES = Path(__file__).with_name("templates")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Table:
    """A table: column headers, rows of cells (any values; floats are formatted) and a caption."""

    columns: list
    rows: list
    caption: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Figure:
    """A figure file of the page, by path relative to the page's directory."""

    path: str
    caption: str = ""
    alt: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Section:
    """A titled part of a page.

    Attributes
    ----------
    title : str
    text : str or list of str
        Paragraphs (a string is split on blank lines).  Plain text, escaped.
    tables : list of Table
    figures : list of Figure
    id : str, optional
        The HTML id of the section (default: derived from the title); tests and
        links address sections by it.
    """

    title: str
    text: object = ""
    tables: list = dataclasses.field(default_factory=list)
    figures: list = dataclasses.field(default_factory=list)
    id: str = ""

    @property
    def anchor(self):
        if self.id:
            return self.id
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    @property
    def paragraphs(self):
        if isinstance(self.text, str):
            return [p.strip() for p in self.text.split("\n\n") if p.strip()]
        return [str(p) for p in self.text]


def format_cell(value):
    """How a table cell is shown: floats to 6 significant digits, None as an em dash."""
    if value is None:
        return "\u2014"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if np.isnan(v):
            return "\u2014"
        return f"{v:.6g}"
    return str(value)


def _environment():
    import jinja2            # imported when a page is written, not with the library

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = format_cell
    return env


def write_page(out_dir, *, title, sections, summary=(), subtitle="", self_contained=False,
               filename="index.html"):
    """Write an HTML page (``out_dir/index.html``) and return its path.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Created if missing.  Figures named by the sections must already be in it.
    title, subtitle : str
    sections : list of Section
    summary : sequence of (label, value)
        The key facts shown at the top.
    self_contained : bool
        Embed every figure as a ``data:`` URI, so the HTML file alone is the report.
    filename : str

    Returns
    -------
    pathlib.Path
    """
    from .. import __version__

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for s in sections:
        for f in s.figures:
            file = out_dir / f.path
            if not file.is_file():
                raise FileNotFoundError(f"figure {f.path!r} of section {s.title!r} is not in "
                                        f"{out_dir}; save it there before writing the page")
            images[f.path] = _data_uri(file) if self_contained else f.path
    html = _environment().get_template("page.html").render(
        title=title, subtitle=subtitle, sections=sections,
        summary=[(str(k), format_cell(v)) for k, v in summary], images=images,
        version=__version__,
        generated=datetime.datetime.now().isoformat(timespec="seconds"))
    path = out_dir / filename
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _data_uri(file):
    import base64

    mime = {".png": "image/png", ".svg": "image/svg+xml"}.get(file.suffix.lower())
    if mime is None:
        raise ValueError(f"figure {file.name}: only .png and .svg can be embedded")
    return f"data:{mime};base64," + base64.b64encode(file.read_bytes()).decode("ascii")


def json_ready(value):
    """`value` with numpy arrays and scalars turned into JSON-serialisable lists and numbers;
    NaN and infinities become None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else None
    return value


def write_json(path, data):
    """Write `data` as indented JSON (through :func:`json_ready`), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(json_ready(data), fh, indent=2, allow_nan=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def copy_file(src, out_dir):
    """Copy `src` into `out_dir`; return its name there."""
    dst = Path(out_dir) / Path(src).name
    shutil.copyfile(src, dst)
    return dst.name
