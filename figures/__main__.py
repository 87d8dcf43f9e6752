"""``python -m figures RESULTS_DIR``: redraw every figure and rewrite the report.

Reads the stored results of ``python -m montecarlo.run`` in ``RESULTS_DIR``
(nothing is recomputed; every stored value is verified against its checksum)
and writes ``RESULTS_DIR/figures/*.png|pdf``,
``RESULTS_DIR/report.md`` and ``RESULTS_DIR/report.html``.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (documented in ``--help``)."""
    p = argparse.ArgumentParser(
        prog="python -m figures",
        description=(
            "Redraw the figures and rewrite report.md / report.html of a results "
            "directory written by python -m montecarlo.run, from the stored results "
            "only."
        ),
    )
    p.add_argument("results_dir", type=pathlib.Path, help="the results directory (OUT)")
    p.add_argument(
        "--c",
        type=float,
        default=1.0,
        help="user-given constant c for the bound curves and the 'bound holds at c' "
        "claims (default: 1.0)",
    )
    p.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="confidence level of intervals, tests and c* (default: 0.95)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code.

    Exit code 2 with one line on stderr (``error: ...``) for bad arguments, a
    directory that holds no results, or a store that is corrupt or fails a
    checksum.
    """
    parser = build_parser()
    a = parser.parse_args(argv)
    if not a.results_dir.is_dir():
        parser.error(
            f"RESULTS_DIR must be an existing directory, got {str(a.results_dir)!r}"
        )
    if not 0 < a.confidence < 1:
        parser.error(f"--confidence must be in (0, 1), got {a.confidence}")
    if not (math.isfinite(a.c) and a.c > 0):
        parser.error(f"--c must be a finite number > 0, got {a.c}")
    from figures._report import write_report
    from montecarlo._store import StoreError

    try:
        path = write_report(a.results_dir, confidence=a.confidence, c=a.c)
    except (StoreError, ValueError) as exc:  # unusable directory: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    print(f"        {path.with_suffix('.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
