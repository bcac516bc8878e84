"""One harness for tests and benchmarks: redis-server, relay and load processes on loopback."""
