"""Runs the keras-swin benchmark: `python benchmarks/run.py [options]`.

What is measured, and how: `benchmarks/bench.py` and docs/speed.md;
`python benchmarks/run.py --help` lists the options. Results go to the
clone's benchmarks/results/latest.json and latest.md. `make bench` runs
it; with an editable install `keras-swin benchmark` is the same command.

The clone's root goes first on `sys.path`, so the benchmark measures the
clone's keras_swin (the worker processes get the same PYTHONPATH).
An expected failure (an unwritable results folder, a missing module)
prints one line and exits 1.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench import main  # noqa: E402


def _run(argv=None) -> int:
    try:
        return main(argv)
    except (OSError, ValueError, ImportError) as error:
        message = str(error)
        if isinstance(error, OSError) and error.strerror:
            message = error.strerror + (
                f": {error.filename}" if error.filename else ""
            )
        print(f"benchmarks/run.py: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_run())
