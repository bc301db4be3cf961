"""A tip bot written the way python-telegram-bot's examples teach, for bench/throughput.py.

One persistent `ConversationHandler` (conversationbot.py, persistentconversationbot.py) walks
tipline's tip flow with PTB's defaults (updates handled one at a time):

    /tip -> category (buttons) -> area (any text) -> place (text) -> description (text, at least
    10 characters) -> files (photos or documents, or "Bỏ qua ➡") -> when (buttons) -> contact
    ("🕶 Giữ ẩn danh") -> review ("✅ Gửi tin báo") -> the tip code and a 6-digit PIN

A press is answered, then the pressed message edited into the next prompt (inlinekeyboard.py); a
text gets a reply. Every prompt carries inline buttons (at least "✖ Hủy"), so a driver can tell
where an answer ends. The draft lives in `context.user_data` and sent tips in
`context.bot_data["tips"]` (code -> tip), both kept by `PicklePersistence`.

Configured by EXAMPLE_BOT_TOKEN, EXAMPLE_BOT_API_URL (a python-telegram-bot base_url) and
EXAMPLE_BOT_DATA_DIR (the folder of the pickle file). It runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os
import secrets
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)
from telegram.warnings import PTBUserWarning

CATEGORY, AREA, PLACE, DESCRIPTION, FILES, WHEN, CONTACT, REVIEW = range(8)
CATEGORIES = (
    "Ma túy",
    "Trộm cắp, cướp giật",
    "Lừa đảo, lừa đảo qua mạng",
    "An toàn giao thông",
    "Cờ bạc và tệ nạn xã hội khác",
    "Khác",
)
WHENS = ("Đang xảy ra", "Lúc trước, trong hôm nay", "Trước hôm nay", "Không rõ")
MIN_DESCRIPTION = 10
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L

CANCEL = InlineKeyboardButton("✖ Hủy", callback_data="cancel")
CANCEL_ONLY = InlineKeyboardMarkup([[CANCEL]])
FILES_KEYBOARD = InlineKeyboardMarkup(
    [[InlineKeyboardButton("Bỏ qua ➡", callback_data="files")], [CANCEL]]
)
CONTACT_KEYBOARD = InlineKeyboardMarkup(
    [[InlineKeyboardButton("🕶 Giữ ẩn danh", callback_data="contact:ẩn danh")], [CANCEL]]
)
REVIEW_KEYBOARD = InlineKeyboardMarkup(
    [[InlineKeyboardButton("✅ Gửi tin báo", callback_data="send")], [CANCEL]]
)


def choices(prefix: str, labels: Sequence[str]) -> InlineKeyboardMarkup:
    """One button per label (callback data "prefix:label"), then Cancel."""
    rows = [[InlineKeyboardButton(label, callback_data=f"{prefix}:{label}")] for label in labels]
    return InlineKeyboardMarkup([*rows, [CANCEL]])


def draft(context: ContextTypes.DEFAULT_TYPE) -> dict[Any, Any]:
    """The tip being written: the user's user_data, which PicklePersistence keeps."""
    assert context.user_data is not None  # every update of this bot has a user
    return context.user_data


def text_message(update: Update) -> tuple[Message, str]:
    """The message of a text update and its text."""
    assert update.message is not None and update.message.text is not None
    return update.message, update.message.text


async def pressed(update: Update) -> tuple[CallbackQuery, str]:
    """Answer the press, as PTB's examples do first; the query and the choice after "prefix:"."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    return query, query.data.partition(":")[2]


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Start a new draft: ask for the category."""
    draft(context).clear()
    message, _ = text_message(update)
    await message.reply_text(
        "Bước 1/7. Sự việc thuộc loại nào?", reply_markup=choices("category", CATEGORIES)
    )
    return CATEGORY


async def category(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep the category; ask for the area."""
    query, choice = await pressed(update)
    draft(context)["category"] = choice
    await query.edit_message_text(
        f"Loại việc: {choice}\n\nBước 2/7. Sự việc xảy ra ở phường, xã hoặc khu dân cư nào?",
        reply_markup=CANCEL_ONLY,
    )
    return AREA


async def area(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep the area as typed; ask for the place."""
    message, text = text_message(update)
    draft(context)["area"] = text
    await message.reply_text(
        "Bước 3/7. Tên đường, số nhà, điểm nhận biết?", reply_markup=CANCEL_ONLY
    )
    return PLACE


async def place(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep the place; ask for the description."""
    message, text = text_message(update)
    draft(context)["place"] = text
    await message.reply_text(
        f"Bước 4/7. Mô tả sự việc (ít nhất {MIN_DESCRIPTION} ký tự).", reply_markup=CANCEL_ONLY
    )
    return DESCRIPTION


async def description(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep a long enough description; ask for files."""
    message, text = text_message(update)
    if len(text) < MIN_DESCRIPTION:
        await message.reply_text(
            f"Nội dung quá ngắn: ít nhất {MIN_DESCRIPTION} ký tự.", reply_markup=CANCEL_ONLY
        )
        return DESCRIPTION
    draft(context).update(description=text, files=[])
    await message.reply_text(
        "Bước 5/7. Gửi ảnh hoặc tài liệu, hoặc bấm Bỏ qua.", reply_markup=FILES_KEYBOARD
    )
    return FILES


async def add_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep a photo or document; ask for more."""
    message = update.message
    assert message is not None
    file = message.photo[-1] if message.photo else message.document
    assert file is not None  # the filter lets only photos and documents through
    files = draft(context).setdefault("files", [])
    files.append(file.file_id)
    await message.reply_text(
        f"Đã nhận {len(files)} tệp. Gửi thêm, hoặc bấm Bỏ qua.", reply_markup=FILES_KEYBOARD
    )
    return FILES


async def files_done(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Ask when it happened."""
    query, _ = await pressed(update)
    await query.edit_message_text(
        "Bước 6/7. Sự việc xảy ra khi nào?", reply_markup=choices("when", WHENS)
    )
    return WHEN


async def when(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep the time; ask about contact."""
    query, choice = await pressed(update)
    draft(context)["when"] = choice
    await query.edit_message_text(
        "Bước 7/7. Bạn có muốn giữ ẩn danh không?", reply_markup=CONTACT_KEYBOARD
    )
    return CONTACT


async def contact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep the contact choice; show the draft for review."""
    query, choice = await pressed(update)
    tip = draft(context)
    tip["contact"] = choice
    summary = "\n".join(
        f"{label}: {tip.get(key, '')}"
        for label, key in (
            ("Loại việc", "category"),
            ("Khu vực", "area"),
            ("Địa điểm", "place"),
            ("Sự việc", "description"),
            ("Thời gian", "when"),
            ("Liên hệ", "contact"),
        )
    )
    await query.edit_message_text(
        f"Vui lòng kiểm tra tin báo trước khi gửi:\n\n{summary}\nTệp: {len(tip.get('files', []))}",
        reply_markup=REVIEW_KEYBOARD,
    )
    return REVIEW


async def send(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """File the tip under a new code and PIN; end the conversation."""
    query, _ = await pressed(update)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(7))
    code = f"{code[:3]}-{code[3:]}"
    pin = f"{secrets.randbelow(10**6):06d}"
    context.bot_data.setdefault("tips", {})[code] = {**draft(context), "pin": pin}
    draft(context).clear()
    await query.edit_message_text(
        f"✅ Tin báo của bạn đã được gửi. Xin cảm ơn.\n\nMã tin báo: {code}\nPIN: {pin}"
    )
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Drop the draft."""
    draft(context).clear()
    if update.callback_query is not None:
        query, _ = await pressed(update)
        await query.edit_message_text("Đã hủy. Không có gì được gửi đi.")
    elif update.message is not None:
        await update.message.reply_text("Đã hủy. Không có gì được gửi đi.")
    return ConversationHandler.END


def conversation() -> ConversationHandler[ContextTypes.DEFAULT_TYPE]:
    """The tip flow, one state per step."""
    typed = filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[CommandHandler("tip", start)],
        states={
            CATEGORY: [CallbackQueryHandler(category, pattern="^category:")],
            AREA: [MessageHandler(typed, area)],
            PLACE: [MessageHandler(typed, place)],
            DESCRIPTION: [MessageHandler(typed, description)],
            FILES: [
                MessageHandler(filters.PHOTO | filters.Document.ALL, add_file),
                CallbackQueryHandler(files_done, pattern="^files$"),
            ],
            WHEN: [CallbackQueryHandler(when, pattern="^when:")],
            CONTACT: [CallbackQueryHandler(contact, pattern="^contact:")],
            REVIEW: [CallbackQueryHandler(send, pattern="^send$")],
        },
        fallbacks=[
            CommandHandler("cancel", cancel),
            CallbackQueryHandler(cancel, pattern="^cancel$"),
        ],
        name="tip",
        persistent=True,
    )


def main() -> None:
    """Poll until stopped."""
    logging.basicConfig(level=logging.WARNING, format="example_bot %(levelname)s %(message)s")
    # Presses are tracked per chat and user, which is what this flow wants (see PTB's FAQ).
    warnings.filterwarnings("ignore", "If 'per_message=False'", PTBUserWarning)
    folder = Path(os.environ["EXAMPLE_BOT_DATA_DIR"])
    application = (
        Application.builder()
        .token(os.environ["EXAMPLE_BOT_TOKEN"])
        .base_url(os.environ["EXAMPLE_BOT_API_URL"])
        .persistence(PicklePersistence(filepath=folder / "example_bot.pickle"))
        .build()
    )
    application.add_handler(conversation())
    application.run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
