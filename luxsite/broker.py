"""Celery's Redis transport, publishing through one Redis client per channel rather than a new one per message.

kombu's Redis channel builds a ``redis.Redis`` client (its table of about 170 reply callbacks included)
for every message it publishes, though every client shares the channel's connection pool: on the run
path that was a fifth of the CPU of sending a run's message. The client is kept while the pool lasts
(a fork or a reconnection gives the channel a new pool, and so a new client). ``CELERY_BROKER_TRANSPORT``
names this transport for ``redis://`` broker URLs.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _publisher: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]  # kombu's stubs omit it
        publisher = self._publisher
        if publisher is None or publisher.connection_pool is not self.pool:
            publisher = self._publisher = super()._create_client()  # type: ignore[misc]
        return publisher


class Transport(kombu_redis.Transport):
    Channel = Channel
