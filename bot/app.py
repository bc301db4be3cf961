"""Wiring, read top to bottom: storage, core, channels, maintenance, then run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.exc import ArgumentError, InterfaceError, InvalidRequestError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram.error import InvalidToken, NetworkError

from bot.broadcasting import alert_composer, missed_composer, report_composer
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_sender import TelegramSender
from bot.channels.web import WebChannel
from bot.channels.web_sender import WebSender
from bot.config import ConfigError, Settings
from bot.i18n import Catalog
from bot.secret import load_secret
from broadcasts.drainer import Drainer
from broadcasts.fanout import Fanout
from broadcasts.leadership import drain_alone
from broadcasts.scheduler import BulletinScheduler, validate
from handlers.context import Limits, Services, Workspace
from handlers.dispatcher import Dispatcher
from storage.area_catalog import AreaCatalog, UnknownProvinceError
from storage.crypto import Vault
from storage.engine import create_engine, create_read_engine, create_sessionmaker
from storage.files import FileStore
from storage.locks import ProcessLock
from storage.migrate import MigrationError, is_current, upgrade, upgrade_in_child
from storage.models import utcnow
from storage.repositories import areas, tips

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 60.0


@dataclass
class Core:
    """The channel-neutral part of a running bot."""

    settings: Settings
    engine: AsyncEngine
    catalog: Catalog
    dispatcher: Dispatcher
    read_engine: AsyncEngine | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Stop background tasks and release the database."""
        for stop in self.closing:
            await stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.read_engine is not None:
            await self.read_engine.dispose()
        await self.engine.dispose()


async def build_core(settings: Settings, *, migrate_in_child: bool = True) -> Core:
    """Open the database (migrated), the key, the catalogs and the dispatcher."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"invalid TIPLINE_DATA_DIR: cannot create it ({exc.strerror})") from None
    vault = Vault(load_secret(settings))
    engine = await open_database(settings.resolved_database_url, migrate_in_child=migrate_in_child)
    catalog = Catalog()
    limits = Limits(
        conversation_timeout=timedelta(minutes=settings.conversation_timeout_minutes),
        tips_per_hour=settings.tips_per_hour,
        flood_messages=settings.flood_messages,
        flood_window_seconds=settings.flood_window_seconds,
        categories=settings.tip_categories,
        max_attachment_bytes=settings.max_attachment_mb * 1024 * 1024,
        area_radius_km=settings.area_radius_km,
    )
    sessions = create_sessionmaker(engine)
    read_engine = create_read_engine(settings.resolved_database_url)
    reads = create_sessionmaker(read_engine) if read_engine is not None else sessions
    services = Services(
        sessions=sessions,
        reads=reads,
        vault=vault,
        translate=catalog,
        files=file_store(settings),
        limits=limits,
        areas=await load_areas(reads, settings.provinces),
        workspace=workspace(settings),
    )
    return Core(settings, engine, catalog, Dispatcher(services), read_engine)


async def load_areas(
    sessions: async_sessionmaker[AsyncSession], provinces: tuple[str, ...]
) -> AreaCatalog:
    """The area catalogue; an unknown province in TIPLINE_PROVINCES is one clear line."""
    try:
        async with sessions() as session:
            return await areas.load_catalog(session, provinces)
    except UnknownProvinceError as exc:
        raise ConfigError(f"invalid TIPLINE_PROVINCES: unknown province {exc}") from None


async def open_database(url: str, *, migrate_in_child: bool = False) -> AsyncEngine:
    """A migrated engine; a bad URL or an unreachable database is one clear line.

    `migrate_in_child` keeps Alembic out of a long-running process: a schema that is already
    current costs one query, a pending migration a short-lived child process.
    """
    try:
        engine = create_engine(url)
    except (ArgumentError, InvalidRequestError, ImportError) as exc:
        raise ConfigError(f"invalid TIPLINE_DATABASE_URL: {exc}") from None
    try:
        if not migrate_in_child:
            await upgrade(engine)
        elif not await is_current(engine):
            await upgrade_in_child(url)
            if not await is_current(engine):
                raise MigrationError("the schema is still not current")
    except (OperationalError, InterfaceError, OSError) as exc:
        await engine.dispose()
        reason = type(getattr(exc, "orig", None) or exc).__name__
        raise ConfigError(f"cannot open the database (TIPLINE_DATABASE_URL): {reason}") from None
    except MigrationError as exc:
        await engine.dispose()
        raise ConfigError(f"cannot migrate the database (TIPLINE_DATABASE_URL): {exc}") from None
    return engine


async def maintain(core: Core) -> None:
    """Every minute: drop idle drafts, erase reply addresses past retention, prune counters."""
    retention = timedelta(days=core.settings.retention_days)
    services = core.dispatcher.services
    async with services.sessions() as session:
        version = await areas.catalog_version(session)
    while True:
        try:
            await core.dispatcher.sweep_expired()
            async with services.sessions() as session, session.begin():
                await tips.erase_reply_addresses(session, utcnow() - retention)
                latest = await areas.catalog_version(session)
            if latest != version:
                # `tipline areas import` ran: pick up the new neighbourhoods.
                services.areas = await load_areas(services.reads, core.settings.provinces)
                version = latest
            core.dispatcher.flood.prune()
            services.pin_failures.prune()
            services.join_failures.prune()
        except Exception:  # keep maintaining; the next round may succeed
            log.exception("maintenance round failed")
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)


async def start_web(core: Core, telegram: TelegramChannel | None) -> web.AppRunner:
    """Serve the web chat (and the Telegram webhook, when configured)."""
    settings = core.settings
    app = web.Application(client_max_size=(settings.max_attachment_mb + 1) * 1024 * 1024)
    if settings.web_enabled:
        WebChannel(
            core.dispatcher, core.catalog, settings.max_attachment_mb * 1024 * 1024
        ).add_routes(app)
    if telegram is not None and telegram.webhook_mode:
        telegram.add_webhook_route(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.web_port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        where = f"{settings.web_host}:{settings.web_port}"
        raise ConfigError(
            f"invalid TIPLINE_WEB_HOST/TIPLINE_WEB_PORT: cannot listen on {where} ({exc.strerror})"
        ) from None
    for address in runner.addresses:
        host, port = address[0], address[1]
        log.info("web chat listening on http://%s:%d/", host, port)
    return runner


async def start_broadcasts(core: Core, telegram: TelegramChannel | None) -> None:
    """The scheduler that makes bulletins' runs, the fan-out that queues every run's
    recipients, and a drainer per channel that can send."""
    services = core.dispatcher.services
    settings = core.settings
    drainers: list[Drainer] = []
    if telegram is not None:
        sender = TelegramSender(telegram.application.bot, files=services.files)
        telegram_drainer = Drainer(
            services.sessions,
            sender,
            services.vault,
            overall_per_second=settings.telegram_messages_per_second or None,
            per_group_per_minute=settings.telegram_group_messages_per_minute,
        )
        telegram.on_sent = telegram_drainer.count_send  # replies count against the same rate
        drainers.append(telegram_drainer)

    if settings.web_enabled:
        # No platform limit to keep to; one message a second per visitor is plenty.
        web_sender = WebSender(services.sessions, services.vault)
        drainers.append(
            Drainer(services.sessions, web_sender, services.vault, overall_per_second=200.0)
        )

    def wake_drainers() -> None:
        for drainer in drainers:
            drainer.notify()

    def wake_all() -> None:
        fanout.notify()
        wake_drainers()

    fanout = Fanout(
        services.sessions,
        services.vault,
        alert_composer(core.catalog, services),
        report_composer(core.catalog),
        on_queued=wake_drainers,
        channels=[drainer.channel for drainer in drainers],
    )
    services.wake_broadcasts = wake_all
    services.proactive_channels = {drainer.channel for drainer in drainers}
    scheduler = BulletinScheduler(
        services.sessions,
        services.vault,
        grace=timedelta(minutes=settings.bulletin_grace_minutes),
        on_run=wake_all,
        missed_text=missed_composer(core.catalog),
    )
    await scheduler.start()
    core.closing.append(scheduler.shutdown)
    services.bulletin_changed = scheduler.changed
    services.check_schedule = schedule_problem
    services.next_bulletin_run = scheduler.next_run
    core.tasks.append(asyncio.create_task(fanout.run()))
    core.tasks.extend(
        asyncio.create_task(
            drain_alone(drainer, ProcessLock(core.engine, f"outbox:{drainer.channel}"))
        )
        for drainer in drainers
    )


def workspace(settings: Settings) -> Workspace:
    """The officers' side of the settings."""
    chats = {"*": f"telegram:{settings.officer_chat}"} if settings.officer_chat else {}
    for pair in settings.officer_chats_by_area:
        area, _, chat = pair.partition("=")
        chats[_area_code(area.strip())] = f"telegram:{chat.strip()}"
    return Workspace(
        officer_chats=chats,
        unit_name=settings.unit_name,
        reward_instructions=settings.reward_instructions,
    )


def _area_code(text: str) -> str:
    """An area as people write its code: 79 is province P79, 26743 ward W26743."""
    if not text.isdigit():
        return text
    return f"P{int(text):02d}" if len(text) <= 2 else f"W{int(text):05d}"


def file_store(settings: Settings) -> FileStore:
    """Where stored files live: tips' cleaned files and bulletins' photos."""
    return FileStore(settings.data_dir / "files")


def schedule_problem(schedule: dict[str, Any], timezone: str) -> str | None:
    """Why the scheduler cannot use a schedule, or None."""
    try:
        validate(schedule, timezone)
    except ValueError as exc:
        return str(exc)
    return None


async def start_telegram(telegram: TelegramChannel) -> None:
    """Start Telegram; a refused token or an unreachable API is one clear line."""
    try:
        await telegram.start()
    except InvalidToken:
        raise ConfigError("invalid TIPLINE_TELEGRAM_TOKEN: Telegram refused it") from None
    except NetworkError as exc:
        raise ConfigError(
            f"cannot reach Telegram at TIPLINE_TELEGRAM_API_URL ({type(exc).__name__})"
        ) from None


async def run(settings: Settings) -> None:
    """Run every configured channel until SIGTERM or SIGINT."""
    core = await build_core(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    telegram: TelegramChannel | None = None
    runner: web.AppRunner | None = None
    try:
        if settings.telegram_token:
            telegram = TelegramChannel(settings, core.dispatcher, core.catalog)
        if settings.web_enabled or (telegram is not None and telegram.webhook_mode):
            runner = await start_web(core, telegram)
        if telegram is not None:
            await start_telegram(telegram)
        core.tasks.append(asyncio.create_task(maintain(core)))
        await start_broadcasts(core, telegram)
        log.info("tipline running")
        await stop.wait()
        log.info("shutting down")
    finally:
        if telegram is not None:
            with contextlib.suppress(Exception):  # it may have failed half-way through start
                await telegram.stop()
        if runner is not None:
            await runner.cleanup()
        await core.close()
