"""Latency, memory and throughput benchmark of the relay; run with `python -m bench.run`."""
