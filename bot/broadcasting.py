"""How proactive messages read: alerts and delivery reports composed in each reader's language."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.i18n import Catalog
from broadcasts.fanout import Compose, ComposeReport, RunReport
from broadcasts.scheduler import MissedText
from broadcasts.senders import OutboundButton, OutboundMessage
from handlers.alerts import EVERYWHERE, resident_text
from handlers.context import Services
from storage.models import Bulletin, BulletinRun
from storage.repositories import bulletins, prompts

SUMMARY_LENGTH = 40


def alert_composer(catalog: Catalog, services: Services) -> Compose:
    """An alert as its resident gets it: header, text, and the button that stops such alerts."""

    def compose(language: str, bulletin: Bulletin, run: BulletinRun) -> OutboundMessage:
        stop = OutboundButton(
            catalog(language, "alert.stop_button"), f"{run.prompt_token}{prompts.SEPARATOR}0"
        )
        where = _where(catalog, services, language, bulletin.target)
        if bulletin.kind == bulletins.BULLETIN:
            text = f"{catalog(language, 'bulletins.header', area=where)}\n\n{bulletin.text}"
        else:
            text = resident_text(catalog, language, where, bulletin.text)
        return OutboundMessage(text, ((stop,),), photo=bulletin.photo_ref)

    return compose


def _where(catalog: Catalog, services: Services, language: str, target: str) -> str:
    """The areas a bulletin is about, as residents read them."""
    labels = [
        services.areas.label(area)
        for code in target.split(",")
        if (area := services.areas.get(code))
    ]
    if labels:
        return "; ".join(labels)
    return catalog(language, "alert.everywhere") if target == EVERYWHERE else "—"


def missed_composer(catalog: Catalog) -> MissedText:
    """What a bulletin's creator is told when the bot was down at its time."""

    def compose(language: str, bulletin: Bulletin, missed_at: datetime) -> str:
        local = missed_at.astimezone(ZoneInfo(bulletin.timezone))
        return catalog(language, "bulletins.missed", id=bulletin.id, at=f"{local:%d/%m %H:%M}")

    return compose


def report_composer(catalog: Catalog) -> ComposeReport:
    """A finished run's delivery report for the admin who made it."""

    def compose(language: str, report: RunReport) -> OutboundMessage:
        text = report.bulletin.text
        summary = text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"
        return OutboundMessage(
            catalog(
                language,
                "alert.report",
                summary=summary,
                sent=report.sent,
                failed=report.failed,
                blocked=report.blocked,
                seconds=round(report.seconds),
                residents=report.residents,
                groups=report.groups,
            )
        )

    return compose
