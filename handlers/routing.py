"""Routers: what each flow answers to, so the dispatcher routes without knowing any flow.

A flow module declares one `Router`: the flows it owns, its commands, the button prefixes it
claims at every step, and the words it intercepts. The dispatcher puts them in one ordered list
and hands every handler a `FlowControl`, so no flow imports the dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from handlers.context import Context
from handlers.flow import FlowSpec


class FlowControl(Protocol):
    """What a router's handlers may ask of the core."""

    async def start_flow(self, ctx: Context, name: str) -> None:
        """Begin a flow at its first step."""
        ...

    async def discard(self, ctx: Context) -> None:
        """Drop the current flow's draft."""
        ...

    async def reprompt(self, ctx: Context) -> None:
        """Show the current step again, or the menu."""
        ...


CommandHandler = Callable[[Context, FlowControl], Awaitable[None]]
ButtonHandler = Callable[[Context, str, FlowControl], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    """A slash command; `listed` ones appear in the platform's command menu (staff's do not)."""

    name: str
    handle: CommandHandler
    listed: bool = True


@dataclass(frozen=True)
class Router:
    """One flow module's claims on the input."""

    name: str
    flows: tuple[FlowSpec, ...] = ()
    commands: tuple[Command, ...] = ()
    # Button actions with these prefixes go to on_button at every step, in a flow or not.
    prefixes: tuple[str, ...] = ()
    on_button: ButtonHandler | None = None
    # Whole messages (folded) taken as a command, only inside `words_in_flows` when it is set.
    words: frozenset[str] = field(default_factory=frozenset)
    words_in_flows: tuple[str, ...] = ()
    on_word: CommandHandler | None = None
    # Its buttons work in group chats too (a notice in the officers' group).
    in_groups: bool = False

    def takes_word(self, word: str, flow: str | None) -> bool:
        """Whether this router intercepts a message that is exactly this word."""
        if self.on_word is None or word not in self.words:
            return False
        return not self.words_in_flows or flow in self.words_in_flows

    def takes_button(self, action: str) -> bool:
        """Whether this router claims a button action at every step."""
        return bool(self.prefixes) and action.startswith(self.prefixes)


async def unknown_command(ctx: Context, core: FlowControl) -> None:
    """The answer to a command nobody serves, and to a staff command from someone who is not."""
    ctx.say(ctx.t("command.unknown"))
    await core.reprompt(ctx)
