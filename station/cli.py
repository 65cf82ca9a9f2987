"""The one ``station`` command: verbs that map to what a lab does.

Each verb lives next to the code it drives, in a ``commands`` module that exposes
``register(subparsers)``; this file only lists them, so adding a verb never touches another
area's code.  Every user-facing failure is a :class:`~station.checks.StationError`, printed
without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from station import __version__
from station.checks import StationError

#: Modules whose ``register(subparsers)`` adds verbs, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "station.record.commands",  # record, inspect, export-pointclouds
    "station.synth.commands",  # synth dataset / preview
    "station.elicit.commands",  # run, check, selfreport
    "station.process.commands",  # code, spot, agree, process
    "station.evaluate.commands",  # evaluate
    "station.demo",  # demo: all of the above on the virtual D415
)

DESCRIPTION = """\
Acquisition and elicitation station for spontaneous 2D+3D micro-expression databases
(the DSME-3D method).  Without a RealSense D415 every verb runs on the virtual D415,
a synthetic participant with known ground truth.

typical order:  station check PROTOCOL  ->  station run  ->  station code / spot / agree
                ->  station process  ->  station evaluate
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="station", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"station {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):  # area not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return dispatch(args)


def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed verb: user-fixable errors print as one line (exit 2), a disk that fills up
    mid-command as one line naming the file (exit 1), Ctrl-C exits 130."""
    from station.checks import disk_full_message, is_disk_full
    from station.console import console, print_error

    try:
        return int(args.func(args) or 0)
    except StationError as err:
        print_error(str(err))
        return 2
    except OSError as err:
        if not is_disk_full(err):
            raise
        print_error(disk_full_message(err))
        if "h5py" in sys.modules:  # an HDF5 file may hold what it cannot write: freeing it would crash HDF5
            from station.record.writer import exit_after_hdf5_write_failure

            exit_after_hdf5_write_failure(1)
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/]")
        return 130


def entry_point() -> None:
    """Console-script entry: ``main()``, then a hard exit if HDF5 cannot shut down cleanly."""
    code = main()
    from station.record.writer import hard_exit_if_hdf5_broken

    hard_exit_if_hdf5_broken(code)  # a disk filled up mid-write; everything flushed is on disk
    sys.exit(code)


if __name__ == "__main__":
    entry_point()
