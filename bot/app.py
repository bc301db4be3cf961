"""Wiring, read top to bottom: storage, core, channels, maintenance, then run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.telegram import TelegramChannel
from bot.channels.web import WebChannel
from bot.config import Settings
from bot.i18n import Catalog
from bot.secret import load_secret
from handlers.context import Limits, Services
from handlers.dispatcher import Dispatcher
from storage.crypto import Vault
from storage.engine import create_engine, create_sessionmaker
from storage.files import FileStore
from storage.migrate import upgrade
from storage.models import utcnow
from storage.repositories import tips

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 60.0


@dataclass
class Core:
    """The channel-neutral part of a running bot."""

    settings: Settings
    engine: AsyncEngine
    catalog: Catalog
    dispatcher: Dispatcher
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        """Stop background tasks and release the database."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.engine.dispose()


async def build_core(settings: Settings) -> Core:
    """Open the database (migrated), the key, the catalogs and the dispatcher."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    vault = Vault(load_secret(settings))
    engine = create_engine(settings.resolved_database_url)
    await upgrade(engine)
    catalog = Catalog()
    limits = Limits(
        conversation_timeout=timedelta(minutes=settings.conversation_timeout_minutes),
        tips_per_hour=settings.tips_per_hour,
        flood_messages=settings.flood_messages,
        flood_window_seconds=settings.flood_window_seconds,
        categories=settings.tip_categories,
        max_attachment_bytes=settings.max_attachment_mb * 1024 * 1024,
    )
    services = Services(
        sessions=create_sessionmaker(engine),
        vault=vault,
        translate=catalog,
        files=FileStore(settings.data_dir / "files"),
        limits=limits,
    )
    return Core(settings, engine, catalog, Dispatcher(services))


async def maintain(core: Core) -> None:
    """Every minute: drop idle drafts, erase reply addresses past retention, prune counters."""
    retention = timedelta(days=core.settings.retention_days)
    services = core.dispatcher.services
    while True:
        try:
            await core.dispatcher.sweep_expired()
            async with services.sessions() as session, session.begin():
                await tips.erase_reply_addresses(session, utcnow() - retention)
            core.dispatcher.flood.prune()
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
    await site.start()
    for address in runner.addresses:
        host, port = address[0], address[1]
        log.info("web chat listening on http://%s:%d/", host, port)
    return runner


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
            await telegram.start()
        core.tasks.append(asyncio.create_task(maintain(core)))
        log.info("tipline running")
        await stop.wait()
        log.info("shutting down")
    finally:
        if telegram is not None:
            await telegram.stop()
        if runner is not None:
            await runner.cleanup()
        await core.close()
