"""The web chat's Sender: a proactive message waits in the visitor's inbox for their page."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcasts.senders import OutboundMessage, Outcome, SendResult
from storage.crypto import Vault
from storage.models import utcnow
from storage.repositories import inbox

CHANNEL = "web"


class WebSender:
    """Puts messages in the web inbox; the page fetches them while open or on the next visit."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault) -> None:
        self.sessions = sessions
        self.vault = vault

    @property
    def channel(self) -> str:
        """The web chat."""
        return CHANNEL

    def is_group(self, address: str) -> bool:
        """The web chat has no groups."""
        return False

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        """Store the message for the visitor behind this cookie."""
        address_hash = self.vault.keyed_hash(f"{CHANNEL}:{address}")
        try:
            async with self.sessions() as session, session.begin():
                await inbox.put(session, address_hash, message.to_payload(), utcnow())
        except Exception as exc:  # the database may be busy; the drainer retries
            return SendResult(Outcome.FAILED, error=type(exc).__name__)
        return SendResult(Outcome.SENT)
