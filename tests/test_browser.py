"""The report in a real browser: headless Chromium renders it, every image loads, the page is
not blank.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it).  Without it the
tests skip, unless ``LANDSCAPE_REQUIRE_BROWSER`` is set (CI sets it), when they fail.
"""

import os
import re
import shutil
import subprocess

import matplotlib.image
import numpy as np
import pytest

import landscape as ls

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ("summary", "critical-points", "basin-graph", "descents", "convexity")

# appended to a copy of the page: after load, the body records how many images failed
_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-broken',
      imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length);
});
</script>"""

if CHROMIUM is None:
    if os.environ.get("LANDSCAPE_REQUIRE_BROWSER"):
        raise RuntimeError("LANDSCAPE_REQUIRE_BROWSER is set but no chromium was found; "
                           "install Debian's chromium package (apt-get install chromium)")
    pytestmark = pytest.mark.skip(reason="chromium is not installed (apt-get install chromium)")


def chromium(*args, tmp):
    r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def dump_dom(page, tmp):
    return chromium("--virtual-time-budget=10000", "--dump-dom", page.as_uri(), tmp=tmp)


def probed_copy(index):
    probe = index.with_name("probe.html")
    probe.write_text(index.read_text().replace("</body>", _PROBE + "</body>"))
    return probe


def image_counts(dom):
    m = re.search(r'<body[^>]*data-images="(\d+)"[^>]*data-broken="(\d+)"', dom)
    assert m, "the probe script did not run"
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    m = ls.ReluTeacherStudent(teacher=np.eye(6), n_students=6)
    s = ls.scan(m, 16, rng=0, lr=5 / 6, progress=False)
    t = ls.one_point_strong_convexity(m, s.minima[0].x, ls.random_directions(m, 4, rng=0),
                                      np.logspace(-3, -1, 3))
    return ls.write_report(s, out, convexity=[t])


def test_the_page_has_its_sections_and_every_image_loads(report, tmp_path):
    dom = dump_dom(probed_copy(report), tmp_path)
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom, section
    assert "Critical points" in dom and "strict-minimum" in dom
    n_images, broken = image_counts(dom)
    assert n_images == report.read_text().count("<img ")
    assert n_images >= 6
    assert broken == 0


def test_the_probe_detects_a_broken_image(report, tmp_path):
    """The check above can fail: one missing figure is reported as broken."""
    page = report.with_name("broken.html")
    page.write_text(report.read_text().replace('src="spectra.png"', 'src="missing.png"'))
    _, broken = image_counts(dump_dom(probed_copy(page).rename(
        report.with_name("probe-broken.html")), tmp_path))
    assert broken == 1


def test_the_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars",
             report.as_uri(), tmp=tmp_path)
    img = matplotlib.image.imread(shot)[..., :3]
    assert img.shape[:2] == (2400, 1280)
    non_white = np.any(img < 0.95, axis=-1).mean()
    assert non_white > 0.05                               # text, tables and figures drawn
    assert len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
