"""The one interface every channel's sender implements, and what a send can come to.

`bot/` builds a sender per channel and hands them to `broadcasts/`, which never imports a
channel: it sends `OutboundMessage`s to addresses and reads back `SendResult`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    """What became of one send."""

    SENT = "sent"
    BLOCKED = "blocked"  # the user blocked the bot, or the chat is gone: do not try again
    RETRY_AFTER = "retry_after"  # the platform asked to wait `retry_after` seconds
    FAILED = "failed"  # a transient failure (5xx, timeout, network): worth trying again
    REJECTED = "rejected"  # the platform refused this message for good (400): not again


@dataclass(frozen=True)
class SendResult:
    """A send's outcome; `error` names the failure's type, never its message."""

    outcome: Outcome
    retry_after: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class OutboundButton:
    """An inline button: its label and the short token pressed back."""

    label: str
    token: str


@dataclass(frozen=True)
class OutboundMessage:
    """A proactive message: text (split at the platform's limit by the sender), buttons, and
    optionally a photo: a stored, re-encoded file's reference ("stored:NAME")."""

    text: str
    buttons: tuple[tuple[OutboundButton, ...], ...] = ()
    photo: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """As stored in the outbox."""
        rows = [[[button.label, button.token] for button in row] for row in self.buttons]
        payload: dict[str, Any] = {"text": self.text, "buttons": rows}
        if self.photo:
            payload["photo"] = self.photo
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OutboundMessage:
        """Back from the outbox."""
        rows = payload.get("buttons") or []
        buttons = tuple(
            tuple(OutboundButton(str(label), str(token)) for label, token in row) for row in rows
        )
        photo = payload.get("photo")
        return cls(
            text=str(payload.get("text", "")),
            buttons=buttons,
            photo=photo if isinstance(photo, str) and photo else None,
        )


class Sender(Protocol):
    """Sends to one channel's addresses."""

    @property
    def channel(self) -> str:
        """The channel's name, as stored with each delivery."""
        ...

    def is_group(self, address: str) -> bool:
        """Whether an address is a group chat (paced per minute, not per second)."""
        ...

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        """Send once; never raises for the platform's answers, only reports them."""
        ...
