"""Routes each inbound event to the right flow, one database session and one lock per chat."""

from __future__ import annotations

import asyncio
import logging
import traceback
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import (
    admin,
    alerts,
    bulletin_flow,
    bulletins,
    cases,
    groups,
    invite_flow,
    menu,
    mytips,
    relay,
    reports,
    staff,
    subscriptions,
    tip,
)
from handlers.context import Context, Services
from handlers.flow import FlowSpec
from handlers.limits import FloodGuard
from handlers.routing import Command, Router, unknown_command
from handlers.types import TOKEN_SEPARATOR, InboundEvent, Reply, Response
from storage.models import Chat, utcnow
from storage.repositories import chats, outbox, prompts
from storage.repositories import subscriptions as subscriptions_repo

log = logging.getLogger(__name__)

Deliver = Callable[[Response], Awaitable[None]]

# Routing order: the first router that claims a word or a button prefix takes it (commands are
# unique, so their order is only the order of the platform's command menu). The tip router comes
# before subscriptions because mid-tip a STOP word cancels only the tip; /start comes first and
# the commands that work at every step last. Outside any flow the main menu takes what is left.
ROUTERS: tuple[Router, ...] = (
    menu.START_ROUTER,
    tip.ROUTER,
    mytips.ROUTER,
    subscriptions.ROUTER,
    staff.ROUTER,
    invite_flow.ROUTER,
    alerts.ROUTER,
    bulletin_flow.ROUTER,
    bulletins.ROUTER,
    cases.ROUTER,
    relay.ROUTER,
    reports.ROUTER,
    admin.ROUTER,
    menu.EVERYWHERE_ROUTER,
)
# Flows a conversation can be in, by the name stored in chats.flow.
FLOWS: dict[str, FlowSpec] = {spec.name: spec for router in ROUTERS for spec in router.flows}
COMMANDS: dict[str, Command] = {
    command.name: command for router in ROUTERS for command in router.commands
}
if len(COMMANDS) != sum(len(router.commands) for router in ROUTERS):
    raise RuntimeError("two routers claim the same command")


def listed_commands() -> list[str]:
    """The commands for the platform's menu, in routing order (staff commands left out)."""
    return [command.name for command in COMMANDS.values() if command.listed]


_LANGUAGE_CACHE_SIZE = 50_000
# Where an open draft keeps its chat's encrypted address, for a proactive expiry notice.
REPLY_KEY = "_reply"


class ChatLocks:
    """One asyncio lock per chat, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Serialise the events of one chat so they are handled in order."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _worth_telling(flow_name: str | None, step: str | None) -> bool:
    """Whether an expired chat lost something it wrote (a queue being browsed did not)."""
    flow = FLOWS.get(flow_name or "")
    return flow is None or flow.worth_telling(step)


class Dispatcher:
    """The channel-neutral core: every channel hands events here and renders the response."""

    def __init__(self, services: Services) -> None:
        self.services = services
        limits = services.limits
        self.flood = FloodGuard(limits.flood_messages, limits.flood_window_seconds)
        self.locks = ChatLocks()
        self._languages: OrderedDict[str, str] = OrderedDict()

    def address_hash(self, event: InboundEvent) -> str:
        """The keyed hash standing for a chat address everywhere in storage."""
        return self.services.vault.keyed_hash(f"{event.channel}:{event.address}")

    async def handle(self, event: InboundEvent, deliver: Deliver | None = None) -> Response:
        """Handle one event and say what to answer; `deliver` sends it before the next event."""
        key = self.address_hash(event)
        allowed, warn = self.flood.check(key)
        if not allowed:
            response = self._flood_response(key, warn)
            if deliver is not None:
                await deliver(response)
            return response
        async with self.locks.hold(key):
            response = await self._handle_locked(key, event)
            if deliver is not None:
                # Inside the chat's lock, so replies reach the user in the order of events.
                await deliver(response)
            return response

    async def _handle_locked(self, key: str, event: InboundEvent) -> Response:
        """One event, in one transaction, while holding the chat's lock."""
        # Downloads and re-encoding happen before the transaction, never while holding it.
        stored = await self._store_files(event)
        kept: set[str] = set()
        try:
            async with self.services.sessions() as session, session.begin():
                language = "en" if (event.language_hint or "").startswith("en") else "vi"
                chat, is_new = await chats.get_or_create(session, key, event.channel, language)
                ctx = Context(
                    self.services, session, chat, event, is_new=is_new, stored_files=stored
                )
                await self._route(ctx)
                if chat.flow is not None and REPLY_KEY not in chat.data:
                    # Only while a draft is open: to tell them proactively if it expires.
                    ctx.update_draft(**{REPLY_KEY: self.services.vault.encrypt(ctx.reply_address)})
                chat.updated_at = ctx.now
                await chats.save(session, chat)
            kept = ctx.kept_files
        except Exception as exc:
            # The transaction rolled back, so nothing changed; the user still gets an answer.
            # Only the type and code locations are logged: messages may quote citizen text.
            where = "".join(traceback.format_tb(exc.__traceback__))
            log.error("handling an event failed: %s\n%s", type(exc).__name__, where)
            language = self._languages.get(key, "vi")
            text = self.services.translate(language, "error.internal")
            return Response(replies=[Reply(text=text)], button_notice=text, language=language)
        finally:
            for ref in set(stored.values()) - kept:
                self.services.files.delete(ref)
        for callback in ctx.committed:
            try:
                callback()
            except Exception as exc:  # committed already: the user's answer stands
                log.error("after-commit callback failed: %s", type(exc).__name__)
        try:
            await self._read_after_commit(ctx)
        except Exception as exc:  # the event is committed; only the read is missing
            log.error("a read after commit failed: %s", type(exc).__name__)
            ctx.say(ctx.t("error.read_failed"))
        self._remember_language(key, chat.language)
        ctx.response.language = chat.language
        return ctx.response

    async def _read_after_commit(self, ctx: Context) -> None:
        """The event's long reads, off the write lock; each one's replies where it asked."""
        replies = ctx.response.replies
        offset = 0
        for index, read in ctx.reads_after_commit:
            said = len(replies)
            async with self.services.reads() as session:
                await read(session)
            added = replies[said:]
            del replies[said:]
            replies[index + offset : index + offset] = added
            offset += len(added)

    async def _store_files(self, event: InboundEvent) -> dict[int, str]:
        """Fetch and store the event's files that can be kept as files: images stripped."""
        stored: dict[int, str] = {}
        files = self.services.files
        limit = self.services.limits.max_attachment_bytes
        for index, attachment in enumerate(event.attachments):
            is_image = attachment.is_image
            if attachment.fetch is None or (attachment.size or 0) > limit:
                continue
            if not is_image and attachment.platform_ref:
                continue  # a platform reference is enough; no need to copy the bytes
            try:
                data = await attachment.fetch()
            except Exception:  # the platform may refuse a download; the reference remains
                log.warning("attachment download failed")
                continue
            if len(data) > limit:
                continue
            save = files.save_image if is_image else files.save
            ref = await asyncio.to_thread(save, data)
            if ref is not None:
                stored[index] = ref
        return stored

    def _flood_response(self, key: str, warn: bool) -> Response:
        """Answer a flood once per window; a pressed button always gets its pop-up."""
        language = self._languages.get(key, "vi")
        text = self.services.translate(
            language, "flood.slow_down", seconds=self.flood.retry_after(key)
        )
        return Response(
            replies=[Reply(text=text)] if warn else [],
            button_notice=text,
            language=language,
            flooded=True,
        )

    def _remember_language(self, key: str, language: str) -> None:
        self._languages[key] = language
        self._languages.move_to_end(key)
        if len(self._languages) > _LANGUAGE_CACHE_SIZE:
            self._languages.popitem(last=False)

    async def _route(self, ctx: Context) -> None:
        """Expiry, buttons, edits, first contact, commands, ROUTERS, the flow, the menu."""
        event, chat = ctx.event, ctx.chat
        await self._expire_if_idle(ctx)
        if chat.blocked:
            # They wrote again, so they can be reached again: resume their alerts.
            chat.blocked = False
            await subscriptions_repo.set_active(ctx.session, chat.address_hash, True)
        action, own_message = await self._resolve_button(ctx)
        if not own_message and not event.group:
            # The flow prompt is answered or passed over: its buttons retire. A press on a
            # proactive message's own buttons leaves the flow prompt live beside it.
            ctx.retire_prompt()
        if event.group:
            # No flows, menus or reprompts in a group: only what the group router answers,
            # which retires a staff choice only when staff use it (members chat meanwhile),
            # and the buttons of routers that work in groups (officers' notices).
            in_groups = [r for r in ROUTERS if r.in_groups and action and r.takes_button(action)]
            if event.button is not None and action is None:
                ctx.notice(ctx.t("button.stale"))
            elif in_groups and in_groups[0].on_button is not None and action is not None:
                await in_groups[0].on_button(ctx, action, self)
            else:
                await groups.handle(ctx, action)
            return
        if event.button is not None and action is None:
            ctx.notice(ctx.t("button.stale"))
            ctx.say(ctx.t("button.stale_long"))
            await self.reprompt(ctx)
            return
        if event.edited:
            ctx.say(ctx.t("input.edited"))
            await self.reprompt(ctx)
            return
        first_contact = ctx.is_new and event.command in (None, "start")
        if first_contact or (event.resume and chat.flow is None):
            menu.show_menu(ctx, intro=ctx.t("start.welcome"))
            return
        if event.resume:
            await self.reprompt(ctx)
            return
        if event.command is not None:
            command = COMMANDS.get(event.command)
            await (command.handle if command else unknown_command)(ctx, self)
            return
        word = unicodedata.normalize("NFC", (event.text or "").strip().casefold())
        for router in ROUTERS:
            if router.on_word is not None and router.takes_word(word, chat.flow):
                await router.on_word(ctx, self)
                return
        if action is not None:
            for router in ROUTERS:
                if router.on_button is not None and router.takes_button(action):
                    await router.on_button(ctx, action, self)
                    return
        flow = FLOWS.get(chat.flow or "")
        if flow is None:
            await menu.handle(ctx, action, self)
        else:
            await flow.handle(ctx, action)

    async def _resolve_button(self, ctx: Context) -> tuple[str | None, bool]:
        """The action behind a pressed button (None when stale, foreign or forged), and whether
        it belongs to a proactive message of its own rather than to the flow prompt."""
        if ctx.event.button is None:
            return None, False
        prefix, _, index = ctx.event.button.rpartition(TOKEN_SEPARATOR)
        chat = ctx.chat
        if not prefix or not index.isdigit():
            return None, False
        if len(prefix) == prompts.TOKEN_LENGTH:
            found = await prompts.resolve(
                ctx.session, prefix, int(index), chat.address_hash, ctx.now
            )
            return (found[0], True) if found else (None, False)
        position = int(index)
        if prefix != chat.prompt_token or position >= len(chat.prompt_actions):
            return None, False
        action, label = chat.prompt_actions[position]
        ctx.response.chosen_label = str(label)
        return str(action), False

    async def _expire_if_idle(self, ctx: Context) -> None:
        """Tell the user their draft expired, whether a sweep or this event found it idle."""
        chat = ctx.chat
        idle = chat.flow is not None and (
            ctx.now - chat.updated_at > self.services.limits.conversation_timeout
        )
        if idle:
            await self.discard(ctx)
        if idle or chat.expired_notice:
            chat.expired_notice = False
            minutes = int(self.services.limits.conversation_timeout.total_seconds() // 60)
            ctx.say(ctx.t("conversation.expired", minutes=minutes))

    async def reprompt(self, ctx: Context) -> None:
        """Show the current step again, or the menu when there is no flow."""
        flow = FLOWS.get(ctx.chat.flow or "")
        if flow is None:
            ctx.chat.flow = None
            menu.show_menu(ctx)
        else:
            await flow.prompt(ctx)

    async def start_flow(self, ctx: Context, name: str) -> None:
        """Begin a flow at its first step."""
        await FLOWS[name].start(ctx)

    async def discard(self, ctx: Context) -> None:
        """Drop the current flow's draft, cleaning up what it stored."""
        flow = FLOWS.get(ctx.chat.flow or "")
        if flow is not None:
            flow.discard(self.services.files, ctx.chat.data)
        ctx.end_flow()

    async def mark_unreachable(self, event: InboundEvent) -> None:
        """The chat blocked the bot: pause its subscriptions until it writes again."""
        key = self.address_hash(event)
        async with self.services.sessions() as session, session.begin():
            await chats.mark_unreachable(session, key)

    async def _tell_expired(
        self, session: AsyncSession, swept: list[tuple[Chat, dict[str, Any]]]
    ) -> int:
        """Queue the expiry notice to chats whose channel can take proactive messages.

        The draft kept its chat's address (encrypted) for this only; the draft is gone now.
        The others are told with their next message, as before.
        """
        minutes = int(self.services.limits.conversation_timeout.total_seconds() // 60)
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "channel": chat.channel,
                "address_hash": chat.address_hash,
                "address_enc": str(data[REPLY_KEY]),
                "payload": {
                    "text": self.services.translate(
                        chat.language, "conversation.expired", minutes=minutes
                    ),
                    "buttons": [],
                },
                "created_at": now,
            }
            for chat, data in swept
            if chat.channel in self.services.proactive_channels and data.get(REPLY_KEY)
        ]
        await outbox.enqueue(session, rows)
        await chats.clear_expired_notice(session, [row["address_hash"] for row in rows])
        return len(rows)

    async def sweep_expired(self) -> int:
        """Drop drafts idle past the timeout (their files too); returns how many."""
        idle_since = utcnow() - self.services.limits.conversation_timeout
        async with self.services.sessions() as session, session.begin():
            expired = await chats.expired_drafts(session, idle_since)
            drafts = {chat.id: (chat.flow or "", dict(chat.data)) for chat in expired}
            worth = {chat.id: _worth_telling(chat.flow, chat.step) for chat in expired}
            swept = await chats.mark_expired(session, list(drafts), idle_since)
            dropped = set(swept)
            gone = [(chat, drafts[chat.id][1]) for chat in expired if chat.id in dropped]
            quiet = [chat.address_hash for chat, _ in gone if not worth[chat.id]]
            await chats.clear_expired_notice(session, quiet)  # nothing they wrote was lost
            told = await self._tell_expired(session, [g for g in gone if worth[g[0].id]])
        if told:
            self.services.wake_broadcasts()
        # Files go only once the drafts are gone for good, and only for drafts still idle.
        for chat_id in swept:
            flow_name, data = drafts[chat_id]
            flow = FLOWS.get(flow_name)
            if flow is not None:
                flow.discard(self.services.files, data)
        return len(swept)
