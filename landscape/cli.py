"""The ``landscape`` command.

The subcommands (scan, classify, convexity, report, study) arrive with the CLI
issue; until then the command reports the library version and says so, rather
than failing with an import error.
"""

import argparse
import sys

__all__ = ["main"]


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="landscape",
        description="Optimization landscapes of shallow ReLU networks. The command-line "
                    "subcommands are not available yet; use the Python API (import landscape).")
    parser.add_argument("--version", action="version", version=f"landscape {__version__}")
    return parser


def main(argv=None):
    """Entry point of the ``landscape`` console script; returns the exit code."""
    parser = _parser()
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        parser.print_help()
        return 0
    parser.parse_known_args(args)            # --version / --help exit here
    print(f"landscape: the subcommand {args[0]!r} is not available yet; use the Python API "
          "(see README.md)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
