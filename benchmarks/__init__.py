"""The speed benchmark: a repository tool, not shipped in the wheel.

`bench` holds the planning, timing, worker, report and merging code;
`run.py` is the command (`python benchmarks/run.py --help`). Import it
from the clone's root as `from benchmarks import bench`.
"""
