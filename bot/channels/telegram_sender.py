"""Telegram's outbox sender: proactive messages to chat ids, each send's outcome reported."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    RetryAfter,
)

from bot.channels.text import split_text
from broadcasts.senders import OutboundButton, OutboundMessage, Outcome, SendResult

# Opt in to PTB's timedelta retry_after now (its default changes in the next major version).
os.environ.setdefault("PTB_TIMEDELTA", "1")
log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
# A long text goes as several messages; these keep its parts inside the chat's own limits.
PART_GAP = 1.0
GROUP_PART_GAP = 3.0
# Once a first part is out, a later one is retried here: a resend would repeat the first.
PART_ATTEMPTS = 3
MAX_PART_WAIT = 30.0
_SENT = SendResult(Outcome.SENT)


class TelegramSender:
    """Sends outbox messages through a `telegram.Bot`; addresses are chat ids as text."""

    def __init__(
        self, bot: Bot, *, part_gap: float = PART_GAP, group_part_gap: float = GROUP_PART_GAP
    ) -> None:
        self.bot = bot
        self.part_gap = part_gap
        self.group_part_gap = group_part_gap

    @property
    def channel(self) -> str:
        """Telegram."""
        return CHANNEL

    def is_group(self, address: str) -> bool:
        """Groups, supergroups and channels have negative ids (or an @username)."""
        return address.startswith(("-", "@"))

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        """Send the text, split at Telegram's limit, with the buttons under its last part."""
        chat_id: int | str = int(address) if address.lstrip("-").isdigit() else address
        parts = split_text(message.text, TEXT_LIMIT)
        keyboard = _keyboard(message.buttons)
        for index, part in enumerate(parts):
            markup = keyboard if index == len(parts) - 1 else None
            if index == 0:
                result = await self._attempt(chat_id, part, markup)
            else:
                await asyncio.sleep(
                    self.group_part_gap if self.is_group(address) else self.part_gap
                )
                result = await self._send_later_part(chat_id, part, markup)
            if result.outcome is not Outcome.SENT:
                return result
        return _SENT

    async def _send_later_part(
        self, chat_id: int | str, text: str, markup: InlineKeyboardMarkup | None
    ) -> SendResult:
        """A part after the first: wait out short flood waits and brief outages in place."""
        result = _SENT
        for attempt in range(PART_ATTEMPTS):
            result = await self._attempt(chat_id, text, markup)
            if result.outcome is Outcome.RETRY_AFTER and result.retry_after <= MAX_PART_WAIT:
                await asyncio.sleep(result.retry_after)
            elif result.outcome is Outcome.FAILED:
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                return result
        log.warning("telegram: a later part of a long message failed: %s", result.error)
        return result

    async def _attempt(
        self, chat_id: int | str, text: str, markup: InlineKeyboardMarkup | None
    ) -> SendResult:
        """One sendMessage, its failure mapped to an outcome (by type, never by message text)."""
        try:
            await self.bot.send_message(chat_id, text, reply_markup=markup)
        except RetryAfter as exc:
            return SendResult(Outcome.RETRY_AFTER, _seconds(exc.retry_after), "RetryAfter")
        except Forbidden:
            return SendResult(Outcome.BLOCKED, error="Forbidden")
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                return SendResult(Outcome.BLOCKED, error="ChatNotFound")
            return SendResult(Outcome.REJECTED, error="BadRequest")
        except ChatMigrated:
            return SendResult(Outcome.REJECTED, error="ChatMigrated")
        except Exception as exc:  # TimedOut, NetworkError, anything else: worth another try
            return SendResult(Outcome.FAILED, error=type(exc).__name__)
        return _SENT


def _keyboard(rows: tuple[tuple[OutboundButton, ...], ...]) -> InlineKeyboardMarkup | None:
    """Inline buttons, each pressing back its short token."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.token) for b in row] for row in rows]
    )


def _seconds(value: float | timedelta) -> float:
    """retry_after as seconds, whichever type this PTB version gives."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
