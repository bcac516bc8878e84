"""Notification channels: Apprise tells people of alerts on every --notify URL, off the hot path.

notification_groups.NotificationPlan decides what each channel is sent and when; this
module only keeps the time and delivers. Each channel has its own bounded queue and
worker, so a service that is down (retried with backoff) delays no other channel. A
channel's failures are counted every time but logged once per outage: again only after
it has delivered in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from pingpong_relay.backoff import Backoff
from pingpong_relay.notification_groups import (
    DEFAULT_GROUP_INTERVAL_S,
    DEFAULT_GROUP_WAIT_S,
    NotificationPlan,
)
from pingpong_relay.notifications import ChannelSpec, Notification, parse_channel
from pingpong_relay.tasks import cancel_and_wait, drain_then_cancel
from pingpong_relay.telemetry.metrics import RelayMetrics

if TYPE_CHECKING:
    import apprise

__all__ = ["NotificationSender", "apprise_channel", "redact_secrets"]

log = logging.getLogger("pingpong_relay.notify")

# The shortest part of a URL that is scrubbed from Apprise's messages before they are
# logged: tokens and passwords are longer, and "json" or a port number give nothing away.
_SECRET_MIN_CHARS: Final = 4


def apprise_channel(spec: ChannelSpec) -> apprise.Apprise:
    """An Apprise object for one channel; ValueError naming the channel by position and
    scheme when Apprise does not know the scheme or cannot read the URL."""
    # Imported here: Apprise loads its ~190 service plugins on first use, which a relay
    # without --notify should not pay for.
    import apprise

    # The registry of every service Apprise has (a singleton; not annotated).
    services = apprise.NotificationManager()  # type: ignore[no-untyped-call]
    if spec.scheme not in services:
        raise ValueError(
            f"notification {spec.name}: Apprise has no service {spec.scheme}:// "
            "(see https://github.com/caronc/apprise/wiki for the services and their URLs)"
        )
    service = apprise.Apprise.instantiate(spec.url)
    if service is None:
        raise ValueError(
            f"notification {spec.name}: Apprise cannot read this {spec.scheme}:// URL "
            f"(see https://github.com/caronc/apprise/wiki for the form it takes)"
        )
    channel = apprise.Apprise()
    channel.add(service)
    return channel


def _secrets(url: str) -> list[str]:
    """The parts of a URL that may be secret (userinfo, host, path segments, query values),
    longest first, so that a token is scrubbed before any part of it."""
    parts = urlsplit(url)
    found = [parts.netloc, *parts.netloc.replace("@", ":").split(":"), *parts.path.split("/")]
    found += [value for pair in parts.query.split("&") for value in pair.split("=")[1:]]
    found += [unquote(part) for part in found]
    return sorted({p for p in found if len(p) >= _SECRET_MIN_CHARS}, key=len, reverse=True)


def redact_secrets(text: str, url: str) -> str:
    """`text` (an error Apprise reported for `url`) without any part of the URL that may
    be secret: Apprise masks what it logs, and this holds should a message slip through."""
    for secret in _secrets(url):
        text = text.replace(secret, "…")
    return text


@dataclass(slots=True)
class _Channel:
    """One --notify URL: its Apprise object, queue, worker and outage state."""

    spec: ChannelSpec
    apprise: Any
    queue: asyncio.Queue[Notification]
    labels: Mapping[str, str]
    task: asyncio.Task[None] | None = None
    failing: bool = False  # an outage has been logged and not yet ended by a delivery
    failed_since_logged: int = 0
    drop_logged: bool = False

    def scrub(self, text: str) -> str:
        """Apprise's message without any part of the channel's URL that may be secret."""
        return redact_secrets(text, self.spec.url)


class NotificationSender:
    """Groups alert transitions and sends each channel its notifications through Apprise.

    `submit` is a plain function: it hands the transition to the plan and returns. One
    task keeps the groups' time; one worker per channel sends, trying each notification
    up to `attempts` times with capped exponential backoff, each try limited to
    `timeout_s`. When a channel's queue is full the oldest notification is dropped (and
    counted). The channel values are --notify values (notifications.parse_channel).
    """

    def __init__(
        self,
        channels: Sequence[str],
        metrics: RelayMetrics,
        *,
        public_url: str | None = None,
        group_wait_s: float = DEFAULT_GROUP_WAIT_S,
        group_interval_s: float = DEFAULT_GROUP_INTERVAL_S,
        attempts: int = 4,
        timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        queue_size: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts!r}")
        specs = [parse_channel(text, position) for position, text in enumerate(channels, 1)]
        self.plan = NotificationPlan(
            specs,
            public_url=public_url,
            group_wait_s=group_wait_s,
            group_interval_s=group_interval_s,
        )
        self._channels = [
            _Channel(
                spec,
                apprise_channel(spec),
                asyncio.Queue(maxsize=queue_size),
                {"channel": str(spec.position), "scheme": spec.scheme},
            )
            for spec in specs
        ]
        self._metrics = metrics
        for channel in self._channels:
            # Every channel's series exist from the start, at 0: a rate() sees the first failure.
            metrics.notifications_sent.labels(**channel.labels)
            metrics.notification_failures.labels(**channel.labels)
            metrics.notifications_dropped.labels(**channel.labels)
        self._attempts = attempts
        self._timeout_s = timeout_s
        self._backoff = backoff or Backoff(base_s=1.0, cap_s=30.0)
        self._clock = clock
        self._wake = asyncio.Event()
        self._grouping: asyncio.Task[None] | None = None

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        """The channels, in the order given."""
        return self.plan.channels

    def start(self) -> None:
        """Starts the grouping task and a worker per channel (nothing without channels;
        once only)."""
        if not self._channels or self._grouping is not None:
            return
        self._grouping = asyncio.create_task(self._group(), name="notification-groups")
        for channel in self._channels:
            channel.task = asyncio.create_task(
                self._deliver(channel), name=f"notification-channel-{channel.spec.position}"
            )

    def submit(self, alert: dict[str, Any]) -> None:
        """Takes an alert transition (its `bot:alert` JSON) without waiting: it is sent,
        with the others of its group, when the group is due."""
        if not self._channels:
            return
        try:
            added = self.plan.add(alert, self._clock())
        except ValueError as exc:
            self._metrics.notification_errors.inc()
            log.error(
                "notification: not a bot:alert transition: %s",
                exc,
                extra={"event": "notification_invalid", "error": str(exc)},
            )
            return
        if added:
            self._wake.set()

    async def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Sends the waiting group at once, gives the queues a short while to go out,
        then stops."""
        if self._grouping is None:
            return
        await cancel_and_wait(self._grouping)
        self._grouping = None
        self._dispatch(self.plan.flush(self._clock(), force=True))
        await asyncio.gather(
            *(
                drain_then_cancel(channel.queue, channel.task, drain_timeout_s)
                for channel in self._channels
            )
        )
        for channel in self._channels:
            channel.task = None

    # --- the groups' time ---------------------------------------------------------------
    async def _group(self) -> None:
        while True:
            self._wake.clear()
            due_s = self.plan.due_at()
            if due_s is None:
                await self._wake.wait()
                continue
            # A new transition never makes a waiting group due sooner: no need to wake.
            await asyncio.sleep(max(0.0, due_s - self._clock()))
            due = self.plan.flush(self._clock())
            if due:
                log.debug(
                    "notification group due for %d channel(s)",
                    len(due),
                    extra={"event": "notification_group", "channels": len(due)},
                )
            self._dispatch(due)

    def _dispatch(self, due: list[tuple[ChannelSpec, Notification]]) -> None:
        for spec, notification in due:
            channel = self._channels[spec.position - 1]
            if channel.queue.full():
                channel.queue.get_nowait()
                channel.queue.task_done()  # or join() in stop() would wait for it forever
                self._metrics.notifications_dropped.labels(**channel.labels).inc()
                if channel.drop_logged:
                    log.debug(
                        "notification %s: dropped another",
                        spec.name,
                        extra={"event": "notification_dropped_again", "channel": spec.name},
                    )
                else:
                    channel.drop_logged = True
                    log.warning(
                        "notification %s: queue full, dropped the oldest notification "
                        "(not logged again until the channel delivers)",
                        spec.name,
                        extra={"event": "notification_dropped", "channel": spec.name},
                    )
            channel.queue.put_nowait(notification)

    # --- delivery -----------------------------------------------------------------------
    async def _deliver(self, channel: _Channel) -> None:
        while True:
            notification = await channel.queue.get()
            try:
                await self._send(channel, notification)
            except Exception:
                # The worker must outlive any one notification, or every later one is lost.
                log.exception("notification %s failed unexpectedly", channel.spec.name)
            finally:
                channel.queue.task_done()

    async def _send(self, channel: _Channel, notification: Notification) -> None:
        error = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff.delay(attempt - 1))
            error = await self._attempt(channel, notification)
            if not error:
                self._metrics.notifications_sent.labels(**channel.labels).inc()
                self._recovered(channel)
                return
        self._metrics.notification_failures.labels(**channel.labels).inc()
        self._failed(channel, attempt + 1, error)

    async def _attempt(self, channel: _Channel, notification: Notification) -> str:
        """One try through Apprise: '' when delivered, else why not (scrubbed)."""
        try:
            result = await channel.apprise.async_notify(
                body=notification.body,
                title=notification.title,
                notify_type=notification.severity,
                body_format="text",
                timeout=self._timeout_s,
            )
        except Exception as exc:
            # A plugin's own bug: one failed try, like any other.
            return channel.scrub(f"{type(exc).__name__}: {exc}")
        if result:
            return ""
        said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
        return channel.scrub(said[-1] if said else f"Apprise reported {result.status.name}")

    def _failed(self, channel: _Channel, attempts: int, error: str) -> None:
        if channel.failing:
            channel.failed_since_logged += 1
            log.debug(
                "notification %s failed again: %s",
                channel.spec.name,
                error,
                extra={"event": "notification_failed_again", "channel": channel.spec.name},
            )
            return
        channel.failing = True
        channel.failed_since_logged = 0
        log.warning(
            "notification %s failed after %d attempt(s): %s (not logged again until the "
            "channel delivers)",
            channel.spec.name,
            attempts,
            error,
            extra={"event": "notification_failed", "channel": channel.spec.name, "error": error},
        )

    def _recovered(self, channel: _Channel) -> None:
        channel.drop_logged = False
        if not channel.failing:
            return
        channel.failing = False
        log.info(
            "notification %s delivers again (%d more notification(s) failed meanwhile)",
            channel.spec.name,
            channel.failed_since_logged,
            extra={"event": "notification_recovered", "channel": channel.spec.name},
        )
