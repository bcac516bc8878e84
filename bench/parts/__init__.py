"""The parts of `python -m bench.run`, one module each: its flags, its runs, its table."""
