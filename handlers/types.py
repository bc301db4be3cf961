"""Channel-neutral events in and replies out; every channel speaks only these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from storage.repositories import prompts


class AttachmentKind(StrEnum):
    """Kinds of file a tip may carry."""

    PHOTO = "photo"
    VIDEO = "video"
    VOICE = "voice"
    AUDIO = "audio"
    DOCUMENT = "document"


@dataclass(frozen=True)
class Location:
    """A point shared by the user."""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class Attachment:
    """A file the user sent: a platform reference and, when storable, a way to fetch its bytes."""

    kind: AttachmentKind
    platform_ref: str
    mime_type: str | None = None
    size: int | None = None
    fetch: Callable[[], Awaitable[bytes]] | None = field(default=None, compare=False)

    @property
    def is_image(self) -> bool:
        """Images are kept only as stored copies stripped of metadata, never as they came."""
        return self.kind is AttachmentKind.PHOTO or (self.mime_type or "").startswith("image/")


@dataclass(frozen=True)
class InboundEvent:
    """One thing a user did: text, a command, a button press, a location, files, or other."""

    channel: str
    address: str
    text: str | None = None
    button: str | None = None
    location: Location | None = None
    attachments: tuple[Attachment, ...] = ()
    unsupported: str | None = None
    edited: bool = False
    resume: bool = False
    language_hint: str | None = None
    is_admin: bool = False
    # In a group chat: the address is the group's, `actor` the private address of who wrote.
    group: bool = False
    actor: str | None = None

    @property
    def command(self) -> str | None:
        """The command name for '/name args' text (bot mentions removed), else None."""
        if not self.text or not self.text.startswith("/"):
            return None
        word = self.text[1:].split(maxsplit=1)[0] if len(self.text) > 1 else ""
        return word.split("@", 1)[0].lower() or None

    @property
    def argument(self) -> str:
        """What follows a command word ('/join 7KQ2M-9XH4P' -> '7KQ2M-9XH4P'), else ''."""
        parts = (self.text or "").split(maxsplit=1) if self.command else []
        return parts[1].strip() if len(parts) > 1 else ""


@dataclass(frozen=True)
class Button:
    """An inline button: its label and the short token sent back when pressed."""

    label: str
    token: str


@dataclass(frozen=True)
class OutgoingFile:
    """A file made for the reader (a chart, an export): its name, bytes and type."""

    name: str
    data: bytes = field(repr=False)
    mime: str = "application/octet-stream"


@dataclass(frozen=True)
class Reply:
    """A message to show: text, optional button rows, optional location request, and
    optionally a stored photo shown with it (a preview of a bulletin or alert)."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    request_location: str | None = None
    location_hint: str | None = None
    photo: str | None = None
    file: OutgoingFile | None = None


@dataclass
class Response:
    """Everything the core says back to one event."""

    replies: list[Reply] = field(default_factory=list)
    button_notice: str | None = None
    chosen_label: str | None = None
    language: str = "vi"
    flooded: bool = False
    # A press refused to this presser only (a group's staff choice): its buttons stay for others.
    keep_pressed: bool = False


TOKEN_SEPARATOR = prompts.SEPARATOR
