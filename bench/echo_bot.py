"""A bare python-telegram-bot echo bot: the floor of bench/throughput.py.

An `Application` with PTB's defaults (updates handled one at a time, `run_polling`'s default
poll interval and timeout) and exactly one sendMessage per update:

- a text message (commands included) is echoed back with one inline button, "↩ Again";
- a press on that button gets one message, "pressed again", with the same button, and no
  answerCallbackQuery.

Configured by ECHO_BOT_TOKEN and ECHO_BOT_API_URL (a python-telegram-bot base_url). It runs
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("↩ Again", callback_data="again")]])
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back with the button."""
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text, reply_markup=KEYBOARD)


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say which button was pressed, with the button again (the query is left unanswered)."""
    if update.callback_query is not None and update.effective_chat is not None:
        text = f"pressed {update.callback_query.data}"
        await context.bot.send_message(update.effective_chat.id, text, reply_markup=KEYBOARD)


def main() -> None:
    """Poll until stopped."""
    logging.basicConfig(level=logging.WARNING, format="echo_bot %(levelname)s %(message)s")
    application = (
        Application.builder()
        .token(os.environ["ECHO_BOT_TOKEN"])
        .base_url(os.environ["ECHO_BOT_API_URL"])
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(pressed))
    application.run_polling(allowed_updates=ALLOWED_UPDATES)


if __name__ == "__main__":
    main()
