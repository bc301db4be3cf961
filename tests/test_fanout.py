"""The fan-out: a run's recipients queued, and the run finished and reported whatever channel."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.app import Core
from broadcasts.fanout import NO_SENDER, Fanout, RunReport
from broadcasts.senders import OutboundMessage
from storage.models import Bulletin, BulletinRun, Delivery, Subscription, utcnow
from storage.repositories import bulletins, outbox

CREATOR = "telegram:5550001"


def compose(language: str, bulletin: Bulletin, run: BulletinRun) -> OutboundMessage:
    return OutboundMessage(f"{language}: {bulletin.text}")


def compose_report(language: str, report: RunReport) -> OutboundMessage:
    return OutboundMessage(
        f"report sent={report.sent} failed={report.failed}"
        f" residents={report.residents} groups={report.groups}"
    )


async def subscribe(core: Core, address: str, *, group: bool = False) -> None:
    """An active subscription to Phường Bến Thành."""
    vault = core.dispatcher.services.vault
    async with core.dispatcher.services.sessions() as session, session.begin():
        session.add(
            Subscription(
                address_hash=vault.keyed_hash(address),
                address_enc=vault.encrypt(address),
                channel=address.split(":", 1)[0],
                area_code="W26743",
                topics=["all"],
                is_group=group,
            )
        )


async def alert(core: Core, count: int = 1) -> list[int]:
    """Alerts to Phường Bến Thành from the creator; their runs' ids."""
    services = core.dispatcher.services
    made = []
    async with services.sessions() as session, session.begin():
        for n in range(count):
            run = await bulletins.create_alert(
                session,
                text=f"Cảnh báo số {n}: cháy ở chợ",
                target="W26743",
                areas=["W26743"],
                created_by="admin",
                creator_address_enc=services.vault.encrypt(CREATOR),
                now=utcnow(),
            )
            made.append(run.id)
    return made


async def deliveries(core: Core) -> list[Delivery]:
    async with core.dispatcher.services.sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def test_a_channel_without_sender_fails_at_once_and_the_run_ends(core: Core) -> None:
    services = core.dispatcher.services
    await subscribe(core, "telegram:5550002")
    await subscribe(core, "telegram:-1005550003", group=True)
    await subscribe(core, "web:visitor-cookie-without-a-drainer-0123456789")
    fanout = Fanout(
        services.sessions, services.vault, compose, compose_report, channels=["telegram"]
    )
    [run_id] = await alert(core)
    assert await fanout.work_once() == 3
    by_channel = {row.channel + str(row.is_group): row for row in await deliveries(core)}
    assert by_channel["webFalse"].status == "failed"
    assert by_channel["webFalse"].last_error == NO_SENDER
    assert by_channel["telegramTrue"].status == by_channel["telegramFalse"].status == "queued"

    async with services.sessions() as session, session.begin():
        await session.execute(
            update(Delivery).where(Delivery.channel == "telegram").values(status=outbox.SENT)
        )
    await fanout.work_once()
    async with services.sessions() as session:
        run = await session.get(BulletinRun, run_id)
        assert run is not None and run.status == bulletins.DONE
    reports = [d for d in await deliveries(core) if d.run_id is None]
    assert [d.payload["text"] for d in reports] == ["report sent=2 failed=1 residents=1 groups=1"]


async def test_every_finished_run_is_reported_however_many_wait(core: Core) -> None:
    services = core.dispatcher.services
    await subscribe(core, "web:visitor-cookie-without-a-drainer-0123456789")
    fanout = Fanout(
        services.sessions, services.vault, compose, compose_report, channels=["telegram"]
    )
    made = await alert(core, 60)  # more than one page of runs to look through
    await fanout.work_once()
    await fanout.work_once()
    async with services.sessions() as session:
        statuses = {run.status for run in await session.scalars(select(BulletinRun))}
    assert statuses == {bulletins.DONE}
    reports = [d for d in await deliveries(core) if d.run_id is None]
    assert len(reports) == len(made)
