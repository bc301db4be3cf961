"""How replies become Telegram messages: merged, split, and location keyboards opened and closed."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

from bot.channels.telegram import TEXT_LIMIT, compose
from handlers.types import Button, OutgoingFile, Reply

MENU = Reply("Menu?", buttons=((Button("Tip", "t.0"),),))


def test_plain_replies_fold_into_the_next() -> None:
    messages, open_after = compose([Reply("Saved."), Reply("Note."), MENU], keyboard_open=False)
    assert [m.text for m in messages] == ["Saved.\n\nNote.\n\nMenu?"]
    assert isinstance(messages[0][1], InlineKeyboardMarkup)
    assert not open_after


def test_an_open_location_keyboard_is_closed_by_a_plain_message() -> None:
    messages, open_after = compose([Reply("📍 Area: X"), MENU], keyboard_open=True)
    assert [m.text for m in messages] == ["📍 Area: X", "Menu?"]
    assert isinstance(messages[0][1], ReplyKeyboardRemove)
    assert not open_after


def test_buttons_and_a_location_request_take_two_messages() -> None:
    ask = Reply(
        "Which area?",
        buttons=((Button("Browse", "b.0"),),),
        request_location="📍 Share",
        location_hint="Or share your location.",
    )
    messages, open_after = compose([ask], keyboard_open=False)
    assert [m.text for m in messages] == ["Which area?", "Or share your location."]
    assert isinstance(messages[1][1], ReplyKeyboardMarkup)
    assert open_after


def test_long_text_is_split_and_never_merged_past_the_limit() -> None:
    long = Reply("word " * 1000)
    messages, _ = compose([long, MENU], keyboard_open=False)
    assert all(len(m.text) <= TEXT_LIMIT for m in messages)
    assert messages[-1][0].endswith("Menu?") and isinstance(messages[-1][1], InlineKeyboardMarkup)
    huge = Reply("x" * 4000)
    messages, _ = compose([huge, Reply("y" * 200)], keyboard_open=False)
    assert [len(m.text) for m in messages] == [4000, 200]


def test_a_photo_carries_a_short_text_as_its_caption_and_goes_before_a_long_one() -> None:
    preview = Reply("Bulletin", buttons=((Button("Save", "s.0"),),), photo="stored:a.jpg")
    messages, _ = compose([Reply("Preview:"), preview], keyboard_open=False)
    assert [(m.text, m.photo) for m in messages] == [
        ("Preview:", None),
        ("Bulletin", "stored:a.jpg"),
    ], "the intro is not folded into the caption"
    assert isinstance(messages[1].markup, InlineKeyboardMarkup)
    long = Reply("x" * 1100, buttons=((Button("Save", "s.0"),),), photo="stored:a.jpg")
    messages, _ = compose([long], keyboard_open=False)
    assert [(len(m.text), m.photo) for m in messages] == [(0, "stored:a.jpg"), (1100, None)]
    assert messages[0].markup is None and isinstance(messages[1].markup, InlineKeyboardMarkup)


def test_a_made_file_goes_with_its_caption() -> None:
    export = OutgoingFile("tips.csv", b"code,category\n", "text/csv")
    messages, _ = compose([Reply("Intro"), Reply("Export", file=export), MENU], keyboard_open=False)
    assert [(m.text, m.file) for m in messages] == [
        ("Intro", None),
        ("Export", export),
        ("Menu?", None),
    ]
