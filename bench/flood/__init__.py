"""`python -m bench.flood`: a flood of made-up bot ids against one relay, with a real bot.

Starts its own redis-server and relay (the relay pinned to one core, this harness and
Redis to the other, where there are two), a local webhook receiver, and a real bot that
publishes once a second. Then publishes `--junk` one-message bot ids (pipelined, in
batches) and measures what they cost the relay and Redis, whether the real bot is still
monitored (status, statistics, its silence alert once it stops), what a relay restart
costs and sends, and Redis's memory once the junk's history has expired (`--retention`,
short here so that it can be watched). Prints Markdown; exits 0 unless the harness fails.
"""
