"""Every `landscape ...` command and every Python block of the README runs, and prints the
numbers the README shows."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# A value printed below this magnitude is at the rounding level (a loss at a global minimum,
# |grad L| after Newton's polish): it depends on the BLAS kernel and the vector width, so it
# only has to be at that level too.
ROUNDING_LEVEL = 1e-9
# Other printed values agree when they differ by at most one unit in the last digit the
# README prints, or by this relative amount (the README's own rounding of long mantissas).
RTOL = 1e-9
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_SECONDS = re.compile(r"[-+]?\d+(?:\.\d+)? s\b")      # timings vary by machine and load

pytestmark = pytest.mark.slow


def _blocks():
    """[(language, body, output or None)]: each fenced block and the unlabelled block right
    after it (its printed output), if any."""
    found = list(re.finditer(r"```(\w*)\n(.*?)```", README, re.S))
    out = []
    for i, m in enumerate(found):
        lang, body = m.group(1), m.group(2)
        if lang == "":
            continue
        nxt = found[i + 1] if i + 1 < len(found) else None
        # an unlabelled block right after (at most a short paragraph between) is the output
        output = None
        if nxt is not None and nxt.group(1) == "" and len(README[m.end():nxt.start()]) < 400:
            output = nxt.group(2)
        out.append((lang, body, output))
    return out


def _numbers(text):
    return _NUMBER.findall(_SECONDS.sub("", text))


def _last_digit(token):
    """One unit in the last printed digit of a number as the README writes it."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def assert_same_numbers(expected, actual, where):
    want, got = _numbers(expected), _numbers(actual)
    assert len(want) == len(got), (where, expected, actual)
    for w, g in zip(want, got):
        a, b = float(w), float(g)
        if abs(a) < ROUNDING_LEVEL:
            assert abs(b) < ROUNDING_LEVEL, (where, w, g)
        else:
            assert abs(a - b) <= max(_last_digit(w), RTOL * abs(a)), (where, w, g, actual)


def _run(args, cwd, timeout=900):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


PYTHON_BLOCKS = [(body, output) for lang, body, output in _blocks() if lang == "python"]


@pytest.mark.parametrize("body, output", PYTHON_BLOCKS,
                         ids=[f"python-{i}" for i in range(len(PYTHON_BLOCKS))])
def test_python_block_runs_and_prints_what_the_readme_shows(body, output, tmp_path):
    r = _run([sys.executable, "-c", body], tmp_path)
    assert r.returncode == 0, r.stderr
    if output is not None:
        assert_same_numbers(output, r.stdout, body.splitlines()[1])


def _commands(body):
    """The `landscape ...` commands of a bash block, in order (pip installs left out)."""
    cmds = []
    for line in body.splitlines():
        line = line.split("#")[0].strip()
        for part in line.split(";"):
            part = part.strip()
            if "&&" in part:
                part = part.split("&&")[-1].strip()
            if part.startswith("landscape "):
                cmds.append(part)
    return cmds


def test_every_landscape_command_of_the_readme_runs(tmp_path):
    """In one folder, in the README's order (later commands use the stores of earlier ones);
    the inputs the README assumes exist are made first: W.npy (a point) and part.db."""
    np.save(tmp_path / "W.npy", np.eye(8))
    setup = _run(["landscape", "scan", "--teacher", "identity:4", "--students", "4",
                  "--starts", "20", "--store", "part.db", "--quiet"], tmp_path)
    assert setup.returncode == 0, setup.stderr
    ran = 0
    for lang, body, output in _blocks():
        if lang != "bash":
            continue
        for cmd in _commands(body):
            r = _run(shlex.split(cmd) + (["--quiet"] if cmd.startswith("landscape scan") else []),
                     tmp_path)
            assert r.returncode == 0, (cmd, r.stdout, r.stderr)
            ran += 1
            if output is not None and len(_commands(body)) == 1:
                assert_same_numbers(output, r.stdout, cmd)
    assert ran >= 10
    assert (tmp_path / "report" / "index.html").is_file()
