"""`python -m bench.push`: push requests per second one relay accepts while clients watch,
and the delay a push adds on its way to them, against the same rate PUBLISHed to Redis."""
