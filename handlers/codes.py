"""Tip codes: made short and unambiguous, read leniently however they are typed."""

from __future__ import annotations

import secrets

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L to misread


def new_code() -> str:
    """A short, unambiguous tip code like K7Q-2M9X."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(7))
    return f"{chars[:3]}-{chars[3:]}"


def normalize_code(text: str) -> str:
    """Read a typed code leniently: case, spaces and dashes do not matter."""
    chars = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{chars[:3]}-{chars[3:]}" if len(chars) == 7 else chars


def code_in(text: str) -> str | None:
    """A tip code typed on its own ('K7Q-2M9X', 'k7q2m9x'), else None."""
    code = normalize_code(text)
    return code if len(code) == 8 and code[3] == "-" else None
