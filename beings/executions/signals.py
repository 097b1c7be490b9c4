"""An execution's completion signal: its new status published on Redis channel ``luxos:execution:<id>`` at commit.

Whatever finishes a run (the worker, a cancel, the reaper, a broker failure) calls
``execution_signal`` inside the transaction that writes the finished row; the message leaves once
that transaction commits, so a waiter woken by it always finds the finished row. A waiter
subscribes first, then reads the row, then waits (``execution_signal_wait``): a finish that
commits between the two is either in the row it reads or in a message it receives.

The worker's finish publishes the outcome itself (``outcome_message``: the columns the claim and
the finish wrote, as JSON), so that a waiter holding the run as it was queued has the finished run
without reading it again (``outcome_apply``); every other signal is the bare status.

Redis pub/sub keeps nothing: a signal nobody listens to is lost, and a waiter that cannot reach
Redis falls back to reading the row now and then. The row is the truth; the signal only wakes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from beings.runtime.cancel import cancel_channel, cancel_message, execution_channel

logger = logging.getLogger(__name__)

# Without Redis, a waiter reads the row this often.
POLL_SECONDS = 0.2
SUBSCRIBE_SECONDS = 2.0

# What a finish publishes beside the status: the columns its claim and the finish itself wrote.
OUTCOME_FIELDS = (
    "result",
    "error",
    "output",
    "output_truncated",
    "layers",
    "calls",
    "summons",
    "duration_ms",
    "worker",
    "queue",
    "attempts",
)
OUTCOME_TIMES = ("started_at", "finished_at")

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class Woken:
    """A wait that ended because the run finished: ``message`` is what was published (None when the row said so)."""

    message: bytes | None = None


def execution_signal(execution_id: uuid.UUID | str, status: str, *, message: str | None = None) -> None:
    """Publish ``status`` (or ``message``, an ``outcome_message``) on the execution's channel once the current
    transaction commits (at once outside one).

    A Redis that cannot be reached is logged and forgotten: the row already says how the run ended.
    """
    _publish_on_commit(execution_channel(execution_id), message or str(status))


def execution_cancel_signal(worker: str, execution_ids: list[uuid.UUID]) -> None:
    """Once the current transaction commits, tell ``worker``'s processes to kill the children of these runs."""
    _publish_on_commit(cancel_channel(worker), cancel_message(execution_ids))


def _publish_on_commit(channel: str, message: str) -> None:
    def publish() -> None:
        try:
            redis_client().publish(channel, message)
        except (redis.RedisError, OSError) as error:
            logger.warning("could not publish %s on %s: %s", message[:100], channel, error)

    transaction.on_commit(publish)


def outcome_message(execution: Any) -> str:
    """The finished run's status and outcome as the signal carries them (JSON)."""
    outcome = {name: getattr(execution, name) for name in OUTCOME_FIELDS}
    for name in OUTCOME_TIMES:
        moment = getattr(execution, name)
        outcome[name] = None if moment is None else moment.isoformat()
    return json.dumps({"status": str(execution.status), **outcome}, separators=(",", ":"))


def outcome_apply(execution: Any, message: bytes | None) -> bool:
    """Write a finish's ``outcome_message`` into ``execution`` (the run as it was queued); False for a bare status."""
    if not message or not message.startswith(b"{"):
        return False
    try:
        outcome = json.loads(message)
        times = {name: outcome[name] and datetime.fromisoformat(outcome[name]) for name in OUTCOME_TIMES}
        fields = {name: outcome[name] for name in ("status", *OUTCOME_FIELDS)}
    except (ValueError, KeyError, TypeError):
        logger.warning("execution %s: an outcome signal that could not be read", execution.pk)
        return False
    for name, value in (fields | times).items():
        setattr(execution, name, value)
    return True


def execution_signal_subscribe(execution_id: uuid.UUID | str) -> None:
    """Ask for the signal of a run about to be queued, without waiting for Redis's answer.

    ``execution_signal_confirm``, called just before the run's message is sent, reads the answer (by
    then arrived); a wait on a run subscribed to and confirmed before it was sent then needs no look
    at its row, as no finish can come before the subscription. Anything amiss (Redis unreachable, a
    confirmation never read) and the wait subscribes and looks as usual.
    """
    channel = execution_channel(execution_id)
    _local.ahead, _local.confirmed = None, None
    try:
        _subscription().subscribe(channel)
    except (redis.RedisError, OSError) as error:
        logger.warning("could not subscribe to the signal of %s: %s", execution_id, error)
        _subscription_drop()
        return
    _local.ahead = channel


def execution_signal_confirm(execution_id: uuid.UUID | str) -> None:
    """Before the run's message leaves: read Redis's confirmation of a subscription asked for ahead, if any."""
    channel = execution_channel(execution_id)
    if getattr(_local, "ahead", None) != channel:
        return
    try:
        _confirmed(_subscription(), channel, time.monotonic() + SUBSCRIBE_SECONDS)
    except (redis.RedisError, OSError) as error:
        logger.warning("no confirmation of the subscription to %s: %s", channel, error)
        _subscription_drop()
        _local.ahead = None
        return
    _local.confirmed = channel


def execution_signal_unsubscribe(execution_id: uuid.UUID | str) -> None:
    """Give up a subscription asked for ahead (the run was refused before it was queued)."""
    channel = execution_channel(execution_id)
    if getattr(_local, "ahead", None) == channel:
        _local.ahead, _local.confirmed = None, None
        try:
            _subscription().unsubscribe(channel)
        except (redis.RedisError, OSError):
            _subscription_drop()


def execution_signal_wait(
    execution_id: uuid.UUID | str, timeout: float, *, ready: Callable[[], bool] | None = None
) -> Woken | None:
    """Wait up to ``timeout`` seconds for the execution's signal: ``Woken`` when it came (or ``ready`` said the run
    had finished), None at the deadline.

    ``ready``, called once subscribed, reads whether the run has already finished: a finish that
    committed before the subscription took is seen there, one after it arrives as a message. A
    subscription confirmed before the run was sent (``execution_signal_subscribe``) skips both.
    Without Redis, ``ready`` is asked every 0.2 s until the deadline. Each thread keeps its
    subscription connection from one wait to the next, subscribed to one channel at a time.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    channel = execution_channel(execution_id)
    key = channel.encode()
    try:
        pubsub = _subscription()  # a new connection forgets what was asked for ahead on the old one
        ahead, confirmed = getattr(_local, "ahead", None) == channel, getattr(_local, "confirmed", None) == channel
        _local.ahead, _local.confirmed = None, None
        if not ahead:
            pubsub.subscribe(channel)
        if not confirmed:
            _confirmed(pubsub, channel, deadline)
    except (redis.RedisError, OSError) as error:
        logger.warning("could not subscribe to the signal of %s: %s", execution_id, error)
        _subscription_drop()
        return _poll(ready, deadline)
    try:
        if not confirmed and ready is not None and ready():
            return Woken()
        while (left := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=left)
            # What is left of an earlier wait (its channel's last messages, its unsubscription) is skipped.
            if message is not None and message.get("type") == "message" and message.get("channel") == key:
                return Woken(message.get("data"))
        return None
    except (redis.RedisError, OSError):
        _subscription_drop()
        return _poll(ready, deadline)
    finally:
        try:
            pubsub.unsubscribe(channel)
        except (redis.RedisError, OSError):
            _subscription_drop()


def _confirmed(pubsub: redis.client.PubSub, channel: str, deadline: float) -> None:
    """Wait for Redis to confirm the subscription to ``channel``: every later publish reaches us."""
    key = channel.encode()
    limit = min(deadline, time.monotonic() + SUBSCRIBE_SECONDS)
    while (left := limit - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message is not None and message.get("type") == "subscribe" and message.get("channel") == key:
            return
    raise redis.TimeoutError(f"no confirmation of the subscription to {channel}")


_local = threading.local()


def _subscription() -> redis.client.PubSub:
    """This thread's subscription connection (a new one after a fork or a change of ``REDIS_URL``)."""
    owner = (os.getpid(), str(settings.REDIS_URL))
    pubsub: redis.client.PubSub | None = getattr(_local, "pubsub", None)
    if pubsub is None or getattr(_local, "owner", None) != owner:
        pubsub = redis_client().pubsub()
        _local.pubsub, _local.owner, _local.ahead, _local.confirmed = pubsub, owner, None, None
    return pubsub


def _subscription_drop() -> None:
    """Forget a subscription connection that failed: the next wait opens a new one."""
    pubsub = getattr(_local, "pubsub", None)
    _local.pubsub, _local.ahead, _local.confirmed = None, None, None
    if pubsub is not None:
        with contextlib.suppress(redis.RedisError, OSError):
            pubsub.close()


def _poll(ready: Callable[[], bool] | None, deadline: float) -> Woken | None:
    while True:
        if ready is not None and ready():
            return Woken()
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(POLL_SECONDS, left))


def redis_client() -> redis.Redis:
    """The process's client of ``settings.REDIS_URL`` (its pool reconnects after a fork)."""
    url = str(settings.REDIS_URL)
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
        return client
