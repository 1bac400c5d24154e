"""The console script's entry point until the CLI issue lands."""

import pytest

import landscape
from landscape.cli import main


def test_no_arguments_prints_help_and_succeeds(capsys):
    assert main([]) == 0
    assert "usage: landscape" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert landscape.__version__ in capsys.readouterr().out


def test_unknown_subcommand_is_bad_usage(capsys):
    assert main(["scan"]) == 2
    assert "not available yet" in capsys.readouterr().err
