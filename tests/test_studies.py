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
