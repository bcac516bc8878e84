"""Ways out to people: alert notifications, sent off the hot path (Apprise channels, webhooks).

Layer: an edge, beside `ws` and `redis_io`, none of which imports another; `app`, `http`
and `cluster` sit above. `webhooks` POSTs each alert as JSON to every --webhook-url
through a bounded queue with retries. `channels` sends grouped notifications through
Apprise (Telegram, Slack, email, … by URL), one queue and worker per channel; what and
when is decided by the pure `notifications` and `notification_groups`. Which relay sends,
when several share one Redis, is decided by the lease in `redis_io.lease`, which the
wiring puts in front of the senders.

May import `telemetry` and the pure core only.
"""
