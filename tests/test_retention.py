"""Reply addresses of closed tips are erased after the retention period."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import Core
from storage.models import Tip, TipOwner, utcnow
from storage.repositories import tips
from tests.flowchat import FlowChat
from tests.test_flows import complete_tip


async def test_closed_tips_lose_their_reply_address(core: Core) -> None:
    sessions = core.dispatcher.services.sessions
    old = FlowChat(core.dispatcher, address="retention-old-0123456789abcdefghijklmnopqr")
    recent = FlowChat(core.dispatcher, address="retention-new-0123456789abcdefghijklmnopqr")
    old_code = await complete_tip(old)
    recent_code = await complete_tip(recent)
    async with sessions() as session, session.begin():
        for code, days in ((old_code, 100), (recent_code, 10)):
            tip = await session.scalar(select(Tip).where(Tip.code == code))
            assert tip is not None
            tip.status, tip.closed_at = "closed", utcnow() - timedelta(days=days)
    async with sessions() as session, session.begin():
        erased = await tips.erase_reply_addresses(session, utcnow() - timedelta(days=90))
    assert erased == 1
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Tip.code, TipOwner.reply_address_enc).join(
                    TipOwner, TipOwner.tip_id == Tip.id
                )
            )
        ).all()
    addresses = dict(rows)
    assert addresses[old_code] is None and addresses[recent_code] is not None
    await old.text("/mytips")
    assert old_code in old.all_text
