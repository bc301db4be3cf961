"""Splitting long text for platforms with a message length limit."""

from __future__ import annotations


def split_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, line or word boundaries into parts of at most `limit` characters."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
