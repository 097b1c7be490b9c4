"""Cancels heard while a run goes on: the ids of cancelled runs, published on their worker's channel, kill their child.

A worker's processes each subscribe once, before their first claim, to ``luxos:cancel:<worker>``
(``CancelWatch.listen``), and keep a thread reading it. ``Sandbox.run`` registers the run it carries
out (``CancelWatch.watch``: no Redis command per run). The cancel service reads, under the run's
row lock, which worker claimed it, and once its transaction commits publishes the ids it cancelled
on that worker's channel (``cancel_message``). On hearing an id the watch kills the child's process
group at once, and the run reports itself cancelled.

No cancel is missed between a claim and the run's registration: the process was subscribed before
it claimed, and a cancel can only be published after the claim committed; an id heard before its
run registered is kept for a while and fires at registration. A watch that cannot reach Redis costs
the run nothing but the cancel: the run goes on to its own end, and the cancelled row still stands.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis.client

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "luxos:execution:"
CANCEL_PREFIX = "luxos:cancel:"
READ_SECONDS = 1.0
RETRY_SECONDS = 1.0
SUBSCRIBE_SECONDS = 2.0
# Ids heard before their run registered (between its claim and its sandbox), kept this many at most.
EARLY_KEPT = 1000


def execution_channel(execution_id: object) -> str:
    """The Redis channel on which an execution's new statuses are published (for its waiters)."""
    return f"{CHANNEL_PREFIX}{execution_id}"


def cancel_channel(worker: str) -> str:
    """The Redis channel on which the runs a worker claimed are cancelled."""
    return f"{CANCEL_PREFIX}{worker}"


def cancel_message(execution_ids: Iterable[object]) -> str:
    """What a cancel publishes on a worker's channel: the ids of the runs it ended, space-separated."""
    return " ".join(str(execution_id) for execution_id in execution_ids)


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
    """The process's subscription to its worker's cancel channel and its runs in progress; thread-safe."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._cancels: dict[str, Cancel] = {}
        self._early: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._pubsub: redis.client.PubSub | None = None
        self._owner = 0
        self._channels: set[str] = set()
        self._confirmed: dict[object, threading.Event] = {}

    def listen(self, worker: str) -> bool:
        """Subscribe this process to ``worker``'s cancel channel, once, and wait for Redis to confirm it.

        Called before a run is claimed, so that a cancel of the run is heard however soon it comes.
        False when Redis cannot be reached (runs go on; they cannot be cancelled while they run).
        """
        channel = cancel_channel(worker)
        with self._lock:
            if channel in self._channels and self._owner == os.getpid():
                return True
            import redis  # here: a sandbox whose runs are not watched needs no Redis client

            try:
                pubsub = self._started()
                confirmed = self._confirmed.setdefault(channel.encode(), threading.Event())
                pubsub.subscribe(**{channel: self._heard})
            except (redis.RedisError, OSError):
                logger.warning("could not subscribe to %s; runs cannot be cancelled while they run", channel)
                return False
            self._channels.add(channel)
        if not confirmed.wait(SUBSCRIBE_SECONDS):
            logger.warning("no confirmation of the subscription to %s yet", channel)
        return True

    @contextlib.contextmanager
    def watch(self, execution_id: object) -> Iterator[Cancel]:
        """A Cancel that fires when the run's id is published on its worker's cancel channel, while the block runs."""
        cancel = Cancel()
        key = str(execution_id)
        with self._lock:
            self._cancels[key] = cancel
            if key in self._early:
                cancel.fire()
        try:
            yield cancel
        finally:
            with self._lock:
                if self._cancels.get(key) is cancel:
                    del self._cancels[key]

    def _started(self) -> redis.client.PubSub:
        """The subscription and its reading thread, started in this process on first use (held lock)."""
        if self._pubsub is None or self._owner != os.getpid():
            # After a fork the parent's connection and thread are not ours: start afresh.
            import redis

            self._pubsub = redis.Redis.from_url(self._url or _redis_url()).pubsub()
            self._owner = os.getpid()
            self._channels = set()
            self._confirmed = {}
            thread = threading.Thread(target=self._listen, args=(self._pubsub,), name="luxos-cancel", daemon=True)
            thread.start()
        return self._pubsub

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        import redis

        while self._pubsub is pubsub:
            if not pubsub.subscribed:  # before the first subscription: nothing to read yet
                time.sleep(0.01)
                continue
            try:
                # A cancel goes to the channel's handler (_heard); what comes back is a confirmation.
                message = pubsub.get_message(timeout=READ_SECONDS)
            except (redis.RedisError, OSError, ValueError):
                logger.warning("the cancel watch lost Redis; it reconnects", exc_info=True)
                time.sleep(RETRY_SECONDS)
                continue
            if message is not None and message.get("type") == "subscribe":
                confirmed = self._confirmed.get(message.get("channel"))
                if confirmed is not None:
                    confirmed.set()

    def _heard(self, message: dict[str, object]) -> None:
        data = message.get("data")
        if not isinstance(data, bytes):
            return
        for key in data.decode(errors="replace").split():
            with self._lock:
                cancel = self._cancels.get(key)
                if cancel is None:  # claimed, not yet in its sandbox: fired when it registers
                    self._early[key] = None
                    while len(self._early) > EARLY_KEPT:
                        self._early.popitem(last=False)
            if cancel is not None:
                cancel.fire()


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
        _default._early = collections.OrderedDict()


os.register_at_fork(after_in_child=_after_fork_in_child)
