"""The sandbox child's end of its channel to the worker: frames out, a reply read for every request.

Being code reaches the worker only through the two capabilities built here, ``execution()`` and
``summon()``, each a request the worker checks. Imported by the zygote: must not import Django.
"""

from __future__ import annotations

import struct
from typing import Any

from beings.runtime import facades, restricted
from beings.runtime.protocol import fd_read_frame, fd_write, frame_encode, json_dumps


class ChildChannel:
    """The child's end: frames out, and a reply read for every request."""

    def __init__(self, fd: int, *, request_bytes: int) -> None:
        self.fd = fd
        self.request_bytes = request_bytes

    def send(self, message: Any) -> None:
        fd_write(self.fd, frame_encode(message))

    def request(self, message: dict[str, Any]) -> Any:
        """Send an execution or summon request and return the reply's value or raise BeingCallError."""
        try:
            body = json_dumps(message, default=facades.json_default).encode()
        except (TypeError, ValueError, RecursionError) as error:
            raise TypeError(f"{message['op']}() arguments must be JSON: {error}") from None
        if len(body) > self.request_bytes:
            raise restricted.BeingCallError(
                "RequestTooLarge", f"{message['op']}() request of {len(body)} bytes; the limit is {self.request_bytes}"
            )
        fd_write(self.fd, struct.pack("!I", len(body)) + body)
        reply = fd_read_frame(self.fd)
        if reply.get("ok") is True:
            return reply.get("value")
        refusal = reply.get("error") or {}
        raise restricted.BeingCallError(str(refusal.get("type", "Error")), str(refusal.get("message", "")))

    def capabilities(self) -> restricted.Capabilities:
        request = self.request

        def execution(target: str, *args: Any, **kwargs: Any) -> Any:
            """Run another being (by soul, alias or hash) and return its result."""
            if not isinstance(target, str):
                raise TypeError("execution() takes the soul, alias or hash of a being as its first argument")
            return request({"op": "execution", "target": target, "args": list(args), "kwargs": kwargs})

        def summon(
            *,
            name: str,
            source: str | None = None,
            type: str | None = None,
            attributes: dict[str, Any] | None = None,
            tags: list[str] | None = None,
        ) -> Any:
            """Create a being; returns what the worker answers (its soul)."""
            if not isinstance(name, str):
                raise TypeError("summon() name must be a string")
            if source is not None and not isinstance(source, str):
                raise TypeError("summon() source must be a string")
            if type is not None and not isinstance(type, str):
                raise TypeError("summon() type must be a string")
            if attributes is not None and not isinstance(attributes, dict | facades.FrozenDict):
                raise TypeError("summon() attributes must be a dict")
            tags = list(tags or ())
            if not all(isinstance(tag, str) for tag in tags):
                raise TypeError("summon() tags must be strings")
            return request(
                {
                    "op": "summon",
                    "name": name,
                    "source": source,
                    "type": type,
                    "attributes": attributes or {},
                    "tags": tags,
                }
            )

        # Their repr is all a being can learn of them: keep it to their names.
        execution.__qualname__, summon.__qualname__ = "execution", "summon"
        return restricted.Capabilities(execution=execution, summon=summon)
