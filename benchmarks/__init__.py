"""The benchmark suite: a full training step of the course's networks, timed against the course's
hand-written NumPy backprop (the baseline) and the eager peers. Run it with `python benchmarks/run.py --help`."""
