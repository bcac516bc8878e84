"""One harness for tests and benchmarks: redis-server, mosquitto, relay and load processes
on loopback."""
