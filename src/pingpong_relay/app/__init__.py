"""The application: the command line, and the wiring that turns Settings into a running relay.

Layer: the top, under `__main__` only. `relay.Relay` is the wiring: it builds one relay's
components, connects them, and owns their lifecycle (one `AsyncExitStack`, so shutdown is
start-up in reverse). `cli` is the parser; `serve` runs the relay (or the workers'
supervisor) and `tools` the helper subcommands; `commands` holds what they share;
`announce`, `auth_setup`, `seeding` and `tls` are steps of start-up.

May import every layer below it: the edges (`cluster`, `http`, `ws`, `redis_io`,
`notify`), `telemetry`, the public APIs (`publisher`, `client`) and the pure core.
"""
