"""The buttons of proactive messages, each message with its own token."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MessagePrompt

SEPARATOR = "."
# Longer than a flow prompt's 6 characters, so the two kinds of token never look alike.
TOKEN_LENGTH = 8


def new_token() -> str:
    """A random token for one message's buttons."""
    return secrets.token_urlsafe(8)[:TOKEN_LENGTH].replace(SEPARATOR, "-")


async def create(
    session: AsyncSession,
    actions: list[tuple[str, str]],
    *,
    now: datetime,
    lifetime: timedelta,
    address_hash: str | None = None,
) -> str:
    """Store a message's (action, label) buttons; their token. `address_hash`: only that chat."""
    token = new_token()
    session.add(
        MessagePrompt(
            token=token,
            address_hash=address_hash,
            actions=[list(pair) for pair in actions],
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    await session.flush()
    return token


async def resolve(
    session: AsyncSession, token: str, index: int, address_hash: str, now: datetime
) -> tuple[str, str] | None:
    """The (action, label) of a pressed button, or None when unknown, expired or not theirs."""
    prompt = await session.get(MessagePrompt, token)
    if prompt is None or prompt.expires_at <= now:
        return None
    if prompt.address_hash is not None and prompt.address_hash != address_hash:
        return None
    actions: list[Any] = list(prompt.actions)
    if not 0 <= index < len(actions):
        return None
    action, label = actions[index]
    return str(action), str(label)
