"""The shape every flow module exports, so the dispatcher can route to it by name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from handlers.context import Context
from storage.files import FileStore


def _nothing_to_discard(files: FileStore, draft: dict[str, Any]) -> None:
    """Default discard: the draft holds nothing outside the chat row."""


def _always(step: str | None) -> bool:
    """Default: losing any step of the flow is worth telling the user."""
    return True


@dataclass(frozen=True)
class FlowSpec:
    """A flow: begin it, re-show its current step, handle input, clean up a dropped draft."""

    name: str
    start: Callable[[Context], Awaitable[None]]
    prompt: Callable[[Context], Awaitable[None]]
    handle: Callable[[Context, str | None], Awaitable[None]]
    discard: Callable[[FileStore, dict[str, Any]], None] = _nothing_to_discard
    # Whether a step that expires held something the user wrote (so they are told it is gone).
    worth_telling: Callable[[str | None], bool] = _always
