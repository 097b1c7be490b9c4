"""Cancels heard while a run goes on: ``cancelled`` on Redis channel ``luxos:execution:<id>`` kills its child.

The cancel service publishes the status ``cancelled`` on the execution's channel once its row says
so. A ``CancelWatch`` holds one subscription connection per process and a thread that reads it;
``Sandbox.run`` subscribes to the channel of the run it carries out (the command is sent, not
awaited: Redis delivers every publish it handles after it) and unsubscribes when the run ends.
On ``cancelled`` the watch kills the child's process group at once and the run reports itself
cancelled. A cancel published before the subscription took (the run claimed, its child not yet
watched) is not missed: the cancel also sets ``luxos:execution:<id>:cancelled`` for a few minutes,
and a thread of the watch reads that mark once the run is subscribed, off the run's path. A watch
that cannot reach Redis costs the run nothing but the cancel: the run goes on to its own end, and
the cancelled row still stands.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis.client

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "luxos:execution:"
CANCELLED = b"cancelled"
CANCEL_MARK_SECONDS = 300
READ_SECONDS = 1.0
RETRY_SECONDS = 1.0


def execution_channel(execution_id: object) -> str:
    """The Redis channel on which an execution's new statuses are published."""
    return f"{CHANNEL_PREFIX}{execution_id}"


def cancel_mark(execution_id: object) -> str:
    """The Redis key a cancel leaves beside its publish, for a watch that subscribed too late to hear it."""
    return f"{CHANNEL_PREFIX}{execution_id}:cancelled"


class Killable(Protocol):
    def kill(self) -> None: ...


class Cancel:
    """One run's cancel: set from the watch's thread, it kills the child the run holds (or the next it gets)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: Killable | None = None
        self.cancelled = False

    def fire(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._child is not None:
                self._child.kill()

    def arm(self, child: Killable) -> None:
        """Kill this child on a cancel (at once if one came already)."""
        with self._lock:
            self._child = child
            if self.cancelled:
                child.kill()

    def disarm(self) -> None:
        """Forget the child before it is closed: its pidfd may not be signalled once it is."""
        with self._lock:
            self._child = None


class CancelWatch:
    """The process's subscription to the channels of its runs in progress; safe to share between threads."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._cancels: dict[bytes, Cancel] = {}
        self._pubsub: redis.client.PubSub | None = None
        self._owner = 0
        self._checks: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    @contextlib.contextmanager
    def watch(self, execution_id: object) -> Iterator[Cancel]:
        """A Cancel that fires when ``cancelled`` is published on the execution's channel, while the block runs."""
        cancel = Cancel()
        channel = execution_channel(execution_id)
        key = channel.encode()
        with self._lock:
            self._cancels[key] = cancel
            pubsub = self._started()
        subscribed = _quietly(pubsub.subscribe, channel)
        if subscribed:
            self._checks.put(key)
        try:
            yield cancel
        finally:
            with self._lock:
                if self._cancels.get(key) is cancel:
                    del self._cancels[key]
            if subscribed:
                _quietly(pubsub.unsubscribe, channel)

    def _started(self) -> redis.client.PubSub:
        """The subscription and its reading thread, started in this process on first use."""
        if self._pubsub is None or self._owner != os.getpid():
            # After a fork the parent's connection and thread are not ours: start afresh.
            import redis  # here: a sandbox whose runs are not watched needs no Redis client

            self._pubsub = redis.Redis.from_url(self._url or _redis_url()).pubsub(ignore_subscribe_messages=True)
            self._owner = os.getpid()
            # Never left: redis-py stops reading a subscription whose channels all went (it waits for a new
            # one), and a run that subscribes while the last run's unsubscribe is confirmed could meet that.
            _quietly(self._pubsub.subscribe, f"{CHANNEL_PREFIX}watch:{uuid.uuid4()}")
            thread = threading.Thread(target=self._listen, args=(self._pubsub,), name="luxos-cancel", daemon=True)
            thread.start()
            self._checks = queue.SimpleQueue()
            checker = threading.Thread(target=self._check, args=(self._pubsub, self._checks), daemon=True)
            checker.start()
        return self._pubsub

    def _check(self, pubsub: redis.client.PubSub, checks: queue.SimpleQueue[bytes]) -> None:
        """Fire the cancels of runs whose mark was set before they subscribed (a publish they missed)."""
        import redis

        client = redis.Redis.from_url(self._url or _redis_url())
        while self._pubsub is pubsub:
            key = checks.get()
            try:
                missed = client.exists(key + b":cancelled")
            except (redis.RedisError, OSError):
                logger.warning("could not read the cancel mark of %s", key, exc_info=True)
                continue
            if missed:
                self._fire(key)

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        import redis

        while self._pubsub is pubsub:
            try:
                message = pubsub.get_message(timeout=READ_SECONDS)
            except (redis.RedisError, OSError, ValueError):
                logger.warning("the cancel watch lost Redis; it reconnects", exc_info=True)
                time.sleep(RETRY_SECONDS)
                continue
            if message is not None and message.get("type") == "message" and message.get("data") == CANCELLED:
                self._fire(message["channel"])

    def _fire(self, key: bytes) -> None:
        with self._lock:
            cancel = self._cancels.get(key)
        if cancel is not None:
            cancel.fire()


def _quietly(command: object, channel: str) -> bool:
    """Send a (un)subscribe; a Redis that cannot be reached costs the cancel, never the run."""
    import redis

    try:
        command(channel)  # type: ignore[operator]
    except (redis.RedisError, OSError):
        logger.warning("could not (un)subscribe to %s; the run cannot be cancelled while it runs", channel)
        return False
    return True


def _redis_url() -> str:
    from django.conf import settings

    return str(settings.REDIS_URL)


_default: CancelWatch | None = None
_default_lock = threading.Lock()


def cancel_watch_default() -> CancelWatch:
    """The process's CancelWatch, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CancelWatch()
        return _default


def _after_fork_in_child() -> None:
    # A lock held by another thread at the fork would never be released in the child, whose runs are its own.
    global _default_lock
    _default_lock = threading.Lock()
    if _default is not None:
        _default._lock = threading.Lock()
        _default._cancels = {}


os.register_at_fork(after_in_child=_after_fork_in_child)
