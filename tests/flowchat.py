"""Drives the core directly with InboundEvents, as a channel would, for flow tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers.dispatcher import Dispatcher
from handlers.types import Attachment, AttachmentKind, Button, InboundEvent, Location, Response


@dataclass
class FlowChat:
    """One user talking to the core; remembers the latest buttons like a real client."""

    dispatcher: Dispatcher
    address: str
    channel: str = "web"
    language_hint: str | None = None
    last: Response = field(default_factory=Response)
    buttons: list[Button] = field(default_factory=list)

    async def _send(self, **fields: object) -> Response:
        event = InboundEvent(
            channel=self.channel,
            address=self.address,
            language_hint=self.language_hint,
            **fields,  # type: ignore[arg-type]
        )
        self.last = await self.dispatcher.handle(event)
        fresh = [b for reply in self.last.replies for row in reply.buttons for b in row]
        if fresh:
            self.buttons = fresh
        return self.last

    async def text(self, text: str) -> Response:
        """Type a message."""
        return await self._send(text=text)

    async def press(self, label: str) -> Response:
        """Press the latest button whose label contains `label`."""
        for button in self.buttons:
            if label in button.label:
                return await self._send(button=button.token)
        raise AssertionError(f"no button {label!r} in {[b.label for b in self.buttons]}")

    async def press_token(self, token: str) -> Response:
        """Send raw callback data, as a forged or stale button would."""
        return await self._send(button=token)

    async def location(self, latitude: float, longitude: float) -> Response:
        """Share a location."""
        return await self._send(location=Location(latitude, longitude))

    async def file(self, data: bytes, mime: str = "image/png") -> Response:
        """Upload a file."""

        async def fetch() -> bytes:
            return data

        kind = AttachmentKind.PHOTO if mime.startswith("image/") else AttachmentKind.DOCUMENT
        attachment = Attachment(kind, "", mime, len(data), fetch=fetch)
        return await self._send(attachments=(attachment,))

    async def sticker(self) -> Response:
        """Send something no step accepts."""
        return await self._send(unsupported="sticker")

    @property
    def texts(self) -> list[str]:
        """Texts of the last response."""
        return [reply.text for reply in self.last.replies]

    @property
    def all_text(self) -> str:
        """The last response's texts joined."""
        return "\n".join(self.texts)
