"""The shape every flow module exports, so the dispatcher can route to it by name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from handlers.context import Context
from storage.files import FileStore


def _nothing_to_discard(files: FileStore, draft: dict[str, Any]) -> None:
    """Default discard: the draft holds nothing outside the chat row."""


@dataclass(frozen=True)
class FlowSpec:
    """A flow: begin it, re-show its current step, handle input, clean up a dropped draft."""

    name: str
    start: Callable[[Context], Awaitable[None]]
    prompt: Callable[[Context], Awaitable[None]]
    handle: Callable[[Context, str | None], Awaitable[None]]
    discard: Callable[[FileStore, dict[str, Any]], None] = _nothing_to_discard
