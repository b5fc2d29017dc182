"""What the ASGI middlewares (access log, metrics, subscriber statistics, rate limits) learn of a
response as it is sent: its status, content coding and body bytes. One wrapper for all of them."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Send


@dataclass
class Answered:
    status: int = 0
    encoding: str | None = None
    bytes: int = 0


def watched(send: Send, answered: Answered, count_bytes: bool) -> Send:
    """`send`, noting in `answered` the status and (`count_bytes`) the body's length. The content
    coding is not read from the headers: feeds/responses.serve, the one place that sends a coded
    body, names it in the scope (ENCODING_KEY)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            answered.status = message["status"]
        elif count_bytes:
            answered.bytes += len(message.get("body", b""))
        await send(message)

    return sending
