"""What the ASGI middlewares (access log, metrics, subscriber statistics, rate limits) learn of a
response as it is sent: its status, content encoding and body bytes. One wrapper for all of them."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Send


@dataclass
class Answered:
    status: int = 0
    encoding: str | None = None
    bytes: int = 0


def watched(send: Send, answered: Answered) -> Send:
    """`send`, noting in `answered` what goes through it."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            answered.status = message["status"]
            for name, value in message.get("headers", ()):
                if name == b"content-encoding":
                    answered.encoding = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            answered.bytes += len(message.get("body", b""))
        await send(message)

    return sending
