"""A bare python-telegram-bot echo bot: the baseline of bench/throughput.py.

Built like tipline's Telegram channel (an `Application` polling with `concurrent_updates(True)`),
with the least possible work per update:

- a text message (commands included) is echoed back with the same text and one inline button;
- a button press is answered (answerCallbackQuery) and, so the driver can time a reply and keep
  pressing, followed by a message naming the pressed data, again with the inline button.

Configured by ECHO_BOT_TOKEN and ECHO_BOT_API_URL (a python-telegram-bot base_url). It runs
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("↩ Again", callback_data="again")]])
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back to the chat it came from."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    await context.bot.send_message(message.chat_id, message.text, reply_markup=KEYBOARD)


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the press, then say which button it was."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None:
        return
    await query.answer()
    if chat is not None:
        await context.bot.send_message(chat.id, f"pressed {query.data}", reply_markup=KEYBOARD)


def main() -> None:
    """Poll until stopped."""
    logging.basicConfig(level=logging.WARNING, format="echo_bot %(levelname)s %(message)s")
    application = (
        Application.builder()
        .token(os.environ["ECHO_BOT_TOKEN"])
        .base_url(os.environ["ECHO_BOT_API_URL"])
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(pressed))
    # The same polling as tipline's channel, so the two differ only in what they do per update.
    application.run_polling(poll_interval=0.05, timeout=10, allowed_updates=ALLOWED_UPDATES)


if __name__ == "__main__":
    main()
