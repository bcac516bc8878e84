"""`python -m bench.history`: days of one bot's history in Redis; time /analytics and /history.

Generates `--days` of one bot publishing once a second (with a few known outages) straight
into its history stream, as the relay writes it; builds the rollups with the relay's own
RollupStore (the first-start backfill); trims the stream to `--keep-raw-days`; then starts a
relay on that Redis and times its HTTP endpoints, checking the analytics against what the
generator knows. Prints Markdown; exits 0 unless the harness itself fails.
"""
