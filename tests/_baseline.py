"""Compare a study's results with a stored baseline of its key numbers (tests/data/baselines/).

A baseline file is JSON: ``{"study", "mode", "source", "values": {path: value}}``, a path being
dot-separated keys and list indices into ``results.json`` (``"over.2.loss_slope.per_start"``).
Importable because pytest puts tests/ on sys.path.
"""

import json
import re
from pathlib import Path

import numpy as np
from numpy.testing import assert_allclose

BASELINES = Path(__file__).parent / "data" / "baselines"


def lookup(results, path):
    """The value at a dot-separated `path` of nested dicts and lists."""
    value = results
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def load_baseline(name):
    """The baseline file ``tests/data/baselines/<name>.json`` as a dict."""
    return json.loads((BASELINES / f"{name}.json").read_text(encoding="utf-8"))


def assert_matches_baseline(results, baseline, tolerances):
    """Every baseline value equals the result at its path within its tolerance.

    `tolerances` is a list of ``(pattern, rtol, atol)``; the first whose regular expression
    matches the path applies (``rtol=None``: the path must exist, its value is checked
    elsewhere).  Returns the number of values compared.
    """
    compared = 0
    for path, expected in baseline["values"].items():
        rtol, atol = next((rt, at) for pattern, rt, at in tolerances if re.search(pattern, path))
        got = lookup(results, path)
        if rtol is None:
            continue
        assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float),
                        rtol=rtol, atol=atol, err_msg=path)
        compared += 1
    return compared
