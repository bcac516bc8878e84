"""The relay's Prometheus metrics: every metric it exports, in a registry of its own.

Layer: below the edges, above the core. `metrics.RelayMetrics` defines and keeps them.
The core never sees it whole and never imports prometheus_client: each core component
declares the few metrics it counts as a small protocol over the shapes in `instruments`,
and the wiring hands it `RelayMetrics`, which has them all.

May import `prometheus_client` and the pure core; never an edge or `app`.
"""
