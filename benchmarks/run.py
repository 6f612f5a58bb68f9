"""Runs the keras-swin benchmark: `python benchmarks/run.py [options]`.

The same as `keras-swin benchmark`; see `keras_swin/benchmark.py` for what
is measured and `python benchmarks/run.py --help` for the options. Results
go to benchmarks/results/latest.json and latest.md.
"""

import sys

from keras_swin.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
