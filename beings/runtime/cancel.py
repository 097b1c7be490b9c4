"""Cancels heard while a run goes on: ``cancelled`` on Redis channel ``luxos:execution:<id>`` kills its child.

The cancel service publishes the status ``cancelled`` on the execution's channel once its row says
so. A ``CancelWatch`` holds one subscription connection per process and a thread that reads it;
``Sandbox.run`` subscribes to the channel of the run it carries out (the command is sent, not
awaited: Redis delivers every publish it handles after it) and unsubscribes when the run ends.
On ``cancelled`` the watch kills the child's process group at once and the run reports itself
cancelled. A watch that cannot reach Redis costs the run nothing but the cancel: the run goes on
to its own end, and the cancelled row still stands.
"""

from __future__ import annotations

import contextlib
import logging
import os
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
READ_SECONDS = 1.0
RETRY_SECONDS = 1.0


def execution_channel(execution_id: object) -> str:
    """The Redis channel on which an execution's new statuses are published."""
    return f"{CHANNEL_PREFIX}{execution_id}"


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
        return self._pubsub

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        import redis

        while self._pubsub is pubsub:
            try:
                message = pubsub.get_message(timeout=READ_SECONDS)
            except (redis.RedisError, OSError, ValueError):
                logger.warning("the cancel watch lost Redis; it reconnects", exc_info=True)
                time.sleep(RETRY_SECONDS)
                continue
            if message is None or message.get("type") != "message" or message.get("data") != CANCELLED:
                continue
            with self._lock:
                cancel = self._cancels.get(message["channel"])
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
