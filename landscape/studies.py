"""The reproducible studies: discovery and running (``landscape study NAME``).

A study is a folder ``studies/<name>/`` of the repository holding ``study.py``,
a ``README.md`` that sets the library's numbers beside the paper's claims, and
optionally a ``config.toml``.  ``study.py`` defines

``TITLE`` : str
    One line: what the study reproduces.
``PAPER`` : str
    The reference (authors, title, venue, year).
``run(out_dir, *, quick=False, progress=True) -> dict``
    Runs the study, writes ``out_dir/results.json`` and the report
    ``out_dir/index.html`` (+ figures) and returns the results.  ``quick`` is
    the reduced mode that CI runs.

Studies are looked up in the folders named by the ``LANDSCAPE_STUDIES``
environment variable (``os.pathsep``-separated), then ``studies/`` of the
source checkout the library was imported from, then ``landscape/_studies/`` of
an installed package (the wheel carries the studies there), then ``./studies``.
"""

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["study_dirs", "list_studies", "load_study", "run_study", "read_config", "cached"]


def read_config(path, quick):
    """A study's settings: the ``[common]`` table of the TOML file `path` merged with
    ``[quick]`` or ``[full]``, lists turned into tuples, plus ``mode``.

    Raises
    ------
    ValueError
        The file lacks one of the tables.
    """
    try:
        import tomllib
    except ModuleNotFoundError:          # Python 3.10: the tomli backport
        import tomli as tomllib
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    mode = "quick" if quick else "full"
    missing = [t for t in ("common", mode) if not isinstance(data.get(t), dict)]
    if missing:
        raise ValueError(f"{path}: missing table(s) {', '.join(f'[{t}]' for t in missing)}")
    merged = {**data["common"], **data[mode]}
    merged = {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}
    return {"mode": mode, **merged}


def cached(out_dir, name, settings, compute):
    """``compute()`` once per `settings`: its JSON result is kept in ``out_dir/cache/<name>.json``.

    A study's stages are cached so that an interrupted run resumes and a rerun of the
    report costs nothing.  The cache is used only when the stored settings equal
    `settings` (after a JSON round trip), so changing a setting recomputes.

    Parameters
    ----------
    out_dir : str or os.PathLike
    name : str
        File stem of the cache entry.
    settings : JSON-ready data
        Everything the result depends on (include a version or format number).
    compute : callable
        ``compute() -> JSON-ready data``.

    Returns
    -------
    result : JSON data
    hit : bool
        Read from the cache.
    seconds : float
        Compute time of the run that produced `result`.

    Examples
    --------
    >>> import tempfile
    >>> from landscape.studies import cached
    >>> d = tempfile.mkdtemp()
    >>> cached(d, "square", {"x": 3}, lambda: 3 ** 2)[:2]
    (9, False)
    >>> cached(d, "square", {"x": 3}, lambda: 1 / 0)[:2]      # not recomputed
    (9, True)
    """
    from .report import json_ready, write_json

    path = Path(out_dir) / "cache" / f"{name}.json"
    settings = json.loads(json.dumps(json_ready(settings)))
    if path.is_file():
        try:
            with open(path, encoding="utf-8") as fh:
                stored = json.load(fh)
        except (OSError, ValueError):          # a torn write: recompute
            stored = {}
        if stored.get("settings") == settings and "seconds" in stored:
            return stored["result"], True, stored["seconds"]
    t = time.perf_counter()
    result = json.loads(json.dumps(json_ready(compute())))
    seconds = time.perf_counter() - t
    write_json(path, {"settings": settings, "seconds": seconds, "result": result})
    return result, False, seconds


def study_dirs():
    """The folders searched for studies, in order (existing ones only)."""
    dirs = [Path(p) for p in os.environ.get("LANDSCAPE_STUDIES", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parent
    dirs += [here.parent / "studies", here / "_studies", Path.cwd() / "studies"]
    seen, out = set(), []
    for d in dirs:
        d = d.resolve()
        if d.is_dir() and d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _study_files():
    found = {}
    for d in study_dirs():
        for f in sorted(d.glob("*/study.py")):
            found.setdefault(f.parent.name, f)
    return found


def list_studies():
    """``{name: title}`` of every study found (titles read without running anything)."""
    return {name: load_study(name).TITLE for name in sorted(_study_files())}


def load_study(name):
    """The module ``studies/<name>/study.py``.

    Raises
    ------
    ValueError
        No study of that name (the message lists the known ones).
    """
    files = _study_files()
    if name not in files:
        known = ", ".join(sorted(files)) or "none found"
        where = ", ".join(str(d) for d in study_dirs()) or "no studies/ folder"
        raise ValueError(f"unknown study {name!r}; known studies: {known} (searched {where}; "
                         "install landscape with pip, run from a checkout of the repository, "
                         "or set LANDSCAPE_STUDIES)")
    modname = f"landscape_study_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, files[name])
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[modname]
        raise
    for attr in ("TITLE", "PAPER", "run"):
        if not hasattr(module, attr):
            raise ValueError(f"study {name!r} ({files[name]}) does not define {attr}")
    return module


def run_study(name, out_dir=None, *, quick=False, progress=True):
    """Run study `name`; write its report and ``results.json`` to `out_dir`.

    Parameters
    ----------
    name : str
    out_dir : str or os.PathLike, optional
        Default ``study-<name>`` (``study-<name>-quick`` with `quick`) in the
        working directory.
    quick : bool
        The reduced mode (minutes at most; what CI runs).
    progress : bool

    Returns
    -------
    dict
        The study's results, with ``wall_seconds`` added.
    """
    module = load_study(name)
    if out_dir is None:
        out_dir = f"study-{name}-quick" if quick else f"study-{name}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    results = module.run(out_dir, quick=quick, progress=progress)
    results = dict(results)
    results.setdefault("wall_seconds", time.perf_counter() - t)
    for f in ("results.json", "index.html"):
        if not (out_dir / f).is_file():
            raise RuntimeError(f"study {name!r} did not write {f} into {out_dir}")
    return results
