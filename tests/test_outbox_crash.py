"""A crash in the middle of an alert run: `tipline run` is killed with SIGKILL while it sends a
10,000-recipient alert, started again on the same data folder, and finishes the run: nobody is
missed, nobody gets it three times, and the few who get it twice are the sends in flight."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from broadcasts.drainer import FLUSH_EVERY, Drainer
from storage.crypto import Vault
from storage.repositories import outbox
from tests.conftest import SECRET
from tests.outbox_seed import (
    ALERT_TEXT,
    REPORT_MARK,
    WARD,
    CountingServer,
    create_alert_run,
    kill,
    log_leaks,
    log_tail,
    migrate,
    run_state,
    seed_subscribers,
    sqlite_url,
    start_tipline,
    stop,
    until,
    wait_until_polling,
)

TOKEN = "931000:AAE-outbox-crash-test-token-0123456789abc"
RECIPIENTS = 10_000
FIRST_CHAT = 931_000_000
ADMIN_CHAT = 930_999_999
RATE = 1000  # TIPLINE_TELEGRAM_MESSAGES_PER_SECOND: the most the settings allow
KILL_AT = 0.45  # of the recipients delivered
FIRST_PART_TIMEOUT = 60.0
# After the restart: the rest of the run, then the lease of the sends in flight at the kill.
FINISH_TIMEOUT = 110.0
REPORT_SETTLE = 2.5  # longer than the fan-out's idle tick: a second report would show


@pytest.fixture
async def server() -> AsyncIterator[CountingServer]:
    """The fake Bot API, unlimited, counting each chat's copies of the alert."""
    async with CountingServer(ALERT_TEXT) as fake:
        yield fake


def in_flight_bound(rate: float) -> int:
    """The most sends the drainer can have out or unrecorded at once (from drainer.py).

    A batch of `claim` is claimed only once at most claim // 2 are unsettled; successes are
    written every FLUSH_EVERY seconds, so up to a flush interval's worth more (plus one interval
    for the write itself) are accepted by Telegram yet still `sending` in the database.
    """
    defaults = inspect.signature(Drainer.__init__).parameters
    lease: timedelta = defaults["lease"].default
    hold = min(float(defaults["hold"].default), lease.total_seconds() / 4)
    claim = max(1, min(int(defaults["batch"].default), int(rate * hold)))
    return claim + claim // 2 + int(rate * 2 * FLUSH_EVERY)


async def start(
    server: CountingServer, data_dir: Path, log_path: Path
) -> asyncio.subprocess.Process:
    """`tipline run` on the data folder, once it polls the fake server."""
    since = len(server.calls)
    env = {"TIPLINE_TELEGRAM_MESSAGES_PER_SECOND": str(RATE)}
    process = await start_tipline(
        server, TOKEN, data_dir, log_path, secret_key=SECRET, extra_env=env
    )
    if not await wait_until_polling(server, process, TOKEN, since=since):
        await kill(process)
        pytest.fail(f"tipline run did not start: {log_tail(log_path)}")
    return process


@dataclass(frozen=True)
class Crash:
    """What the server and the database showed around the kill and at the end."""

    at_kill: int  # recipients delivered when the bot was killed
    in_flight: int  # deliveries the crash left `sending`
    status: str  # the run's, at the end
    counts: dict[str, int]  # its deliveries by status, at the end
    exit_code: int  # of the second bot, stopped with SIGTERM


async def crash_and_finish(
    server: CountingServer, data_dir: Path, run_id: int, log_path: Path
) -> Crash:
    """Start, SIGKILL at KILL_AT, start again, and wait (bounded) for the run and its report."""
    url = sqlite_url(data_dir)
    process: asyncio.subprocess.Process | None = None
    try:
        process = await start(server, data_dir, log_path)
        assert await until(lambda: server.delivered >= KILL_AT * RECIPIENTS, FIRST_PART_TIMEOUT)
        await kill(process)
        at_kill = server.delivered
        _status, counts = await run_state(url, run_id)
        process = await start(server, data_dir, log_path)
        finished = await until(
            lambda: server.delivered == RECIPIENTS and bool(server.reports), FINISH_TIMEOUT, 0.05
        )
        assert finished, f"{server.delivered} of {RECIPIENTS} got it; reports {server.reports}"
        await asyncio.sleep(REPORT_SETTLE)  # a second report would show by now
        status, final = await run_state(url, run_id)
        exit_code = await stop(process)
    finally:
        if process is not None:
            await kill(process)
    return Crash(at_kill, counts.get(outbox.SENDING, 0), status, final, exit_code)


@pytest.mark.timeout(180)
async def test_killed_mid_run_each_recipient_gets_the_alert_once_or_twice(
    tmp_path: Path, server: CountingServer, record_property: Callable[[str, object], None]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = sqlite_url(data_dir)
    vault = Vault(SECRET.encode())
    chat_ids = list(range(FIRST_CHAT, FIRST_CHAT + RECIPIENTS))
    await migrate(url)
    await seed_subscribers(url, vault, chat_ids, WARD)
    run_id = await create_alert_run(url, vault, text=ALERT_TEXT, area=WARD, admin_chat=ADMIN_CHAT)
    log_path = tmp_path / "bot.log"

    crash = await crash_and_finish(server, data_dir, run_id, log_path)

    twice = sum(1 for n in server.copies.values() if n == 2)
    most = max(server.copies.values())
    bound = in_flight_bound(RATE)
    summary = (
        f"killed at {crash.at_kill}/{RECIPIENTS} delivered; {crash.in_flight} deliveries left "
        f"`sending`; {twice} recipients got the alert twice (bound {bound}); "
        f"at most {most} copies"
    )
    print(f"\noutbox crash: {summary}")
    record_property("duplicates", twice)
    record_property("in_flight_at_kill", crash.in_flight)
    record_property("delivered_at_kill", crash.at_kill)

    assert 0.3 * RECIPIENTS <= crash.at_kill <= 0.6 * RECIPIENTS, summary
    assert set(server.copies) == set(chat_ids), "every recipient got it, nobody else"
    assert most <= 2, summary
    assert twice <= crash.in_flight <= bound, summary
    assert crash.status == "done", crash
    assert crash.counts == {outbox.SENT: RECIPIENTS}, crash
    assert dict(server.reports) == {ADMIN_CHAT: 1}, "the admin gets one report"
    report = next(m["text"] for m in server.bot_messages(ADMIN_CHAT) if REPORT_MARK in m["text"])
    assert (
        f"đã đến {RECIPIENTS} người dân" in report and "lỗi 0" in report and "bị chặn 0" in report
    )
    assert crash.exit_code == 0, log_tail(log_path)
    assert log_leaks(log_path, [*chat_ids, ADMIN_CHAT]) == [], "no chat id in the bot's log"
    assert "Traceback" not in log_tail(log_path, 10**7)
