"""How proactive messages read: alerts and delivery reports composed in each reader's language."""

from __future__ import annotations

from bot.i18n import Catalog
from broadcasts.fanout import Compose, ComposeReport, RunReport
from broadcasts.senders import OutboundButton, OutboundMessage
from handlers.alerts import EVERYWHERE, resident_text
from handlers.context import Services
from storage.models import Bulletin, BulletinRun
from storage.repositories import prompts

SUMMARY_LENGTH = 40


def alert_composer(catalog: Catalog, services: Services) -> Compose:
    """An alert as its resident gets it: header, text, and the button that stops such alerts."""

    def compose(language: str, bulletin: Bulletin, run: BulletinRun) -> OutboundMessage:
        area = services.areas.get(bulletin.target)
        if area is not None:
            where = services.areas.label(area)
        else:
            where = catalog(language, "alert.everywhere") if bulletin.target == EVERYWHERE else "—"
        stop = OutboundButton(
            catalog(language, "alert.stop_button"), f"{run.prompt_token}{prompts.SEPARATOR}0"
        )
        text = resident_text(catalog, language, where, bulletin.text)
        return OutboundMessage(text, ((stop,),))

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
            )
        )

    return compose
