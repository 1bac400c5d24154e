"""Study discovery and the shared study configuration reader."""

from pathlib import Path

import pytest

from landscape.studies import list_studies, load_study, read_config

ROOT = Path(__file__).resolve().parents[1]


def test_read_config_merges_common_with_the_mode(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[common]\nseed = 0\nks = [6, 8]\n[full]\nstarts = 500\n"
                    "[quick]\nstarts = 50\nks = [6]\n")
    assert read_config(path, quick=False) == {"mode": "full", "seed": 0, "ks": (6, 8),
                                              "starts": 500}
    assert read_config(path, quick=True) == {"mode": "quick", "seed": 0, "ks": (6,),
                                             "starts": 50}
    path.write_text("[common]\nseed = 0\n")
    with pytest.raises(ValueError, match=r"missing table\(s\) \[quick\]"):
        read_config(path, quick=True)


def test_every_study_defines_the_contract_and_its_config_reads():
    studies = list_studies()
    assert set(studies) == {p.parent.name for p in (ROOT / "studies").glob("*/study.py")}
    for name, title in studies.items():
        module = load_study(name)
        assert title == module.TITLE and module.PAPER and callable(module.run)
        config = Path(module.__file__).with_name("config.toml")
        if config.exists():
            for quick in (False, True):
                assert read_config(config, quick)["mode"] == ("quick" if quick else "full")


def test_unknown_study_names_the_known_ones():
    with pytest.raises(ValueError, match="known studies: .*safran2021"):
        load_study("no-such-study")


def test_the_package_carries_every_study_file():
    """pip install . ships studies/ as landscape/_studies (pyproject's package-dir and
    package-data), and an installed package finds its studies from any folder."""
    try:
        import tomllib
    except ModuleNotFoundError:          # Python 3.10
        import tomli as tomllib
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert conf["package-dir"]["landscape._studies"] == "studies"
    assert "landscape._studies" in conf["packages"]
    shipped = set()
    for pattern in conf["package-data"]["landscape._studies"]:
        shipped |= {p.relative_to(ROOT / "studies") for p in (ROOT / "studies").glob(pattern)}
    files = {p.relative_to(ROOT / "studies") for p in (ROOT / "studies").glob("*/*")
             if p.suffix in (".py", ".toml", ".md")}
    assert files and files <= shipped
    # every package of the tree is listed
    found = {".".join(p.relative_to(ROOT).parent.parts)
             for p in (ROOT / "landscape").rglob("__init__.py")}
    assert found <= set(conf["packages"])


def test_an_installed_package_lists_its_studies_from_any_folder(tmp_path):
    import shutil
    import subprocess
    import sys
    site = tmp_path / "site"
    shutil.copytree(ROOT / "landscape", site / "landscape",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "studies", site / "landscape" / "_studies")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([sys.executable, "-c", "import landscape.studies as s, json; "
                        "print(json.dumps([str(d) for d in s.study_dirs()])); "
                        "print(sorted(s.list_studies()))"],
                       cwd=elsewhere, capture_output=True, text=True,
                       env={"PYTHONPATH": str(site), "PATH": ""})
    assert r.returncode == 0, r.stderr
    dirs, names = r.stdout.splitlines()
    assert str(site / "landscape" / "_studies") in dirs
    assert eval(names) == sorted(p.parent.name for p in (ROOT / "studies").glob("*/study.py"))
