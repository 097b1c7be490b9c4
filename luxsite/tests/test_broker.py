"""The broker transport: Celery's Redis transport, publishing through one client per channel."""

from __future__ import annotations

import uuid
from typing import Any

from luxsite.broker import Transport
from luxsite.celery import app


def test_messages_are_published_through_one_client_until_the_pool_changes() -> None:
    """Sends reuse the channel's client, and each message lands on its queue; a new pool (a fork) gets a new client."""
    queue = f"broker-test-{uuid.uuid4().hex}"
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        channel: Any = connection.default_channel  # the Redis channel: its private parts are not in kombu's stubs
        try:
            first = channel._create_client()
            for number in range(3):
                channel._put(queue, {"body": number})
                assert channel._create_client() is first
            assert channel._size(queue) == 3
            channel._after_fork()  # what kombu does in a forked child: the pools are dropped
            assert channel._create_client() is not first
            assert channel._create_client().connection_pool is channel.pool
        finally:
            channel._purge(queue)
