"""Fan-out of one alert to many subscribers: tipline's outbox beside a plain PTB loop, side by side.

    .venv/bin/python bench/fanout.py [--subscribers 100000] [--limited 1500] [--residents 4]
        [--idle-seconds 10] [--phase-timeout SECONDS]

One fake Bot API server per phase (tests/fake_telegram.py, strict) runs in this process, with
the simulated residents; `tipline run` runs as its own process on a fresh data folder whose
SQLite database is seeded directly (tests/outbox_seed.py): active subscriptions of distinct
Telegram chats to Phường Bến Thành, then an alert to that ward with its pending run, created
while the bot runs (as /alert would). The phases, one after the other:

    (a) unlimited fake, N subscribers, TIPLINE_TELEGRAM_MESSAGES_PER_SECOND=0 (no overall pace,
        so the figure is the outbox's own capacity): messages/s (first copy to last), the bot's
        peak memory (VmHWM) and CPU
    (d) during (a), and before it while the bot is idle: residents (their own chats, not
        subscribed) each sending /help, waiting for the whole answer, pausing, again; the first
        answer's latency (inject -> first sendMessage to that chat), p50/p95
    (b) the fake enforcing Telegram's limits (30 msg/s overall, 1/s per chat, 20/min per group),
        M subscribers, the bot's default pace: achieved messages/s and 429 refusals
    (c) the same limited fake and M fresh chats, the same message (text and button, read from
        (b)'s outbox) sent by the popular template: a python-telegram-bot loop with
        `await asyncio.sleep(0.05)` between sends (a flood wait slept through, then retried)

Printed: each phase's figures, (b) and (c) side by side, (d) idle beside busy, and the goals
with met/MISSED: (a) >= 2,000 msg/s on 2 cores and < 300 MB peak; (b) >= 95% of the limit and
no 429. Every wait is bounded (--phase-timeout, derived from the sizes unless given). The exit
status is 1 when something was wrong: a bot that did not start or exited badly, a recipient
missed or sent twice, a resident never answered, an error or a chat id in the bot's log; a
missed goal does not change it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("PTB_TIMEDELTA", "1")

import telegram  # noqa: E402
from telegram import InlineKeyboardButton, InlineKeyboardMarkup  # noqa: E402
from telegram.error import RetryAfter, TelegramError  # noqa: E402

from storage.crypto import Vault  # noqa: E402
from tests.fake_telegram import ChatKey, JSONDict  # noqa: E402
from tests.outbox_seed import (  # noqa: E402
    ALERT_TEXT,
    WARD,
    CountingServer,
    create_alert_run,
    first_payload,
    kill,
    log_leaks,
    migrate,
    seed_subscribers,
    sqlite_url,
    start_tipline,
    stop,
    until,
    wait_until_polling,
)

SECRET_KEY = "bench-fanout-secret-key-0123456789-abcdefgh"
UNPACED = "0"  # TIPLINE_TELEGRAM_MESSAGES_PER_SECOND: no overall pace (a test server only)
TELEGRAM_LIMIT = 30  # messages per second overall
RATE_GOAL = 2000.0
MEMORY_GOAL_MB = 300.0
LIMIT_SHARE_GOAL = 0.95
TEMPLATE_PAUSE = 0.05
TEMPLATE_ATTEMPTS = 5
REPLY_TIMEOUT = 15.0  # for one resident's answer
RESIDENT_PAUSE = 0.6  # between a resident's messages: inside the bot's 20-per-10-s flood limit
ANSWER_SETTLE = 1.0  # while learning how many messages answer /help
REPORT_TIMEOUT = 30.0
FIRST_RESIDENT = 880_000_000
FIRST_CHAT = {"a": 881_000_000, "b": 882_000_000, "c": 883_000_000}
ADMIN_CHAT = 879_999_999


# --- the fake server's view of the residents ----------------------------------------------


class Residents:
    """Residents writing /help to the bot through the fake, and when their answers came."""

    def __init__(self, server: CountingServer, token: str, chat_ids: Sequence[int]) -> None:
        self.server = server
        self.token = token
        self.arrivals: dict[ChatKey, list[float]] = {chat_id: [] for chat_id in chat_ids}
        self._waiters: dict[ChatKey, tuple[int, asyncio.Future[None]]] = {}
        server.on_send = self.on_send

    def on_send(self, chat: ChatKey) -> None:
        """A sendMessage to some chat succeeded."""
        arrivals = self.arrivals.get(chat)
        if arrivals is None:
            return
        arrivals.append(time.perf_counter())
        waiter = self._waiters.get(chat)
        if waiter is not None and len(arrivals) >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    def ask(self, chat: int) -> tuple[int, float]:
        """Inject /help from a resident: the messages its chat had before, and when."""
        user: JSONDict = {"id": chat, "is_bot": False, "first_name": "Resident"}
        before = len(self.arrivals[chat])
        sent_at = time.perf_counter()
        self.server.inject_update(self.token, self.server.message_update(user, chat, "/help"))
        return before, sent_at

    async def wait_for(self, chat: int, count: int, seconds: float) -> bool:
        """Wait until a chat has `count` messages; False if not within `seconds`."""
        if len(self.arrivals[chat]) >= count:
            return True
        future = asyncio.get_running_loop().create_future()
        self._waiters[chat] = (count, future)
        try:
            await asyncio.wait_for(future, seconds)
        except TimeoutError:
            return False
        finally:
            self._waiters.pop(chat, None)
        return True

    async def learn_answer(self, chat: int) -> int:
        """Send /help once and count the messages of the answer (0: none came)."""
        before, _sent_at = self.ask(chat)
        if not await self.wait_for(chat, before + 1, REPLY_TIMEOUT):
            return 0
        await asyncio.sleep(ANSWER_SETTLE)
        return len(self.arrivals[chat]) - before

    async def talk(
        self, chat: int, answer_size: int, running: Callable[[], bool], latencies: Latencies
    ) -> None:
        """Send /help, time the answer's first message, wait for the rest, pause; repeat."""
        while running():
            before, sent_at = self.ask(chat)
            if not await self.wait_for(chat, before + answer_size, REPLY_TIMEOUT):
                latencies.timeouts += 1
                return
            latencies.samples.append(self.arrivals[chat][before] - sent_at)
            await asyncio.sleep(RESIDENT_PAUSE)

    async def talk_while(self, sizes: dict[int, int], running: Callable[[], bool]) -> Latencies:
        """Every resident talking to the bot while `running()` holds."""
        latencies = Latencies()
        await asyncio.gather(
            *(self.talk(chat, size, running, latencies) for chat, size in sizes.items())
        )
        return latencies


@dataclass
class Latencies:
    """First-answer latencies of the residents' messages, and those never answered."""

    samples: list[float] = field(default_factory=list)
    timeouts: int = 0


# --- measuring a process ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory_mb(pid: int) -> float:
    """The peak resident memory of a process so far (VmHWM), in MB; 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def scan_log(path: Path, chat_ids: Sequence[int]) -> list[str]:
    """What is wrong in a bot's log: errors, tracebacks, chat ids (counted, never printed)."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    problems = [
        f"bot log: {line[-160:]}"
        for line in lines
        if any(word in line for word in (" ERROR ", " CRITICAL ", "Traceback"))
    ]
    leaks = log_leaks(path, chat_ids)
    if leaks:
        problems.append(f"bot log: {len(leaks)} line(s) carry a chat id")
    return problems[:5]


# --- one phase: tipline sending an alert ----------------------------------------------------


@dataclass
class Fanout:
    """What one tipline phase measured."""

    recipients: int
    delivered: int = 0
    duplicates: int = 0
    spread: float = 0.0  # seconds from the first copy to the last
    end_to_end: float = 0.0  # seconds from the alert's creation to the last copy
    cpu: float = 0.0  # the bot's CPU seconds from the alert's creation to its report
    fake_cpu: float = 0.0  # this process's (the fake's and the residents') CPU seconds, the same
    busy: float = 0.0  # seconds of that interval
    peak_mb: float = 0.0
    refusals: int = 0  # 429s the fake answered
    report: bool = False
    idle: Latencies = field(default_factory=Latencies)
    during: Latencies = field(default_factory=Latencies)
    problems: list[str] = field(default_factory=list)
    payload: JSONDict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Messages per second, first copy to last."""
        return (self.delivered - 1) / self.spread if self.spread > 0 else 0.0


@dataclass(frozen=True)
class Phase:
    """A tipline phase: its name, size, token, pace, residents and time bound."""

    name: str
    recipients: int
    token: str
    folder: Path
    env: dict[str, str]
    residents: int
    idle_seconds: float
    timeout: float
    limited: bool

    @property
    def chat_ids(self) -> list[int]:
        """The subscribers' chats."""
        first = FIRST_CHAT[self.name]
        return list(range(first, first + self.recipients))

    @property
    def data_dir(self) -> Path:
        """The bot's data folder."""
        return self.folder / "data"


async def seed(phase: Phase) -> str:
    """A migrated database with the phase's subscribers; its URL."""
    phase.data_dir.mkdir(parents=True)
    url = sqlite_url(phase.data_dir)
    await migrate(url)
    await seed_subscribers(url, Vault(SECRET_KEY.encode()), phase.chat_ids, WARD)
    return url


def new_server(limited: bool) -> CountingServer:
    """A fake Bot API counting the alert's copies, with Telegram's limits or none."""
    server = CountingServer(ALERT_TEXT)
    if limited:
        server.enforce_limits(
            overall_per_second=TELEGRAM_LIMIT, per_chat_per_second=1, per_group_per_minute=20
        )
    return server


async def send_alert(
    server: CountingServer, phase: Phase, url: str, pid: int, result: Fanout
) -> None:
    """Create the alert, wait (bounded) until every subscriber has it and the admin the report."""
    started, cpu_before = time.perf_counter(), cpu_seconds(pid)
    fake_before = time.process_time()
    run_id = await create_alert_run(
        url, Vault(SECRET_KEY.encode()), text=ALERT_TEXT, area=WARD, admin_chat=ADMIN_CHAT
    )
    if not await until(lambda: server.delivered >= phase.recipients, phase.timeout, 0.05):
        result.problems.append(f"{phase.name}: {server.delivered} of {phase.recipients} in time")
    elif not await until(lambda: bool(server.reports), REPORT_TIMEOUT, 0.05):
        result.problems.append(f"{phase.name}: no delivery report for the admin")
    result.busy = time.perf_counter() - started
    result.cpu = cpu_seconds(pid) - cpu_before
    result.fake_cpu = time.process_time() - fake_before
    result.report = bool(server.reports)
    if server.copy_times:
        result.end_to_end = server.copy_times[-1] - started
        result.spread = server.copy_times[-1] - server.copy_times[0]
    result.payload = await first_payload(url, run_id)


async def measure(server: CountingServer, phase: Phase, url: str, pid: int) -> Fanout:
    """Residents idle, then the alert with residents talking throughout."""
    result = Fanout(phase.recipients)
    chats = [FIRST_RESIDENT + n for n in range(phase.residents)]
    residents = Residents(server, phase.token, chats)
    sizes = {chat: await residents.learn_answer(chat) for chat in chats}
    if any(size == 0 for size in sizes.values()):
        result.problems.append(f"{phase.name}: a resident's /help was never answered")
        sizes = {}
    idle_until = time.monotonic() + phase.idle_seconds
    result.idle = await residents.talk_while(sizes, lambda: time.monotonic() < idle_until)
    sending = asyncio.ensure_future(send_alert(server, phase, url, pid, result))
    result.during = await residents.talk_while(sizes, lambda: not sending.done())
    await sending
    return result


def tally(server: CountingServer, phase: Phase, result: Fanout) -> None:
    """Copies per recipient and refusals, from the fake's counts."""
    result.delivered = server.delivered
    result.duplicates = sum(count - 1 for count in server.copies.values())
    result.refusals = server.flood_refusals.total
    if result.delivered < phase.recipients:
        result.problems.append(f"{phase.name}: {phase.recipients - result.delivered} missed")
    if result.duplicates:
        result.problems.append(f"{phase.name}: {result.duplicates} sent twice (no crash here)")


async def run_tipline(phase: Phase) -> Fanout:
    """One tipline phase on a fresh server and data folder."""
    url = await seed(phase)
    log_path = phase.folder / "bot.log"
    async with new_server(phase.limited) as server:
        process = await start_tipline(
            server,
            phase.token,
            phase.data_dir,
            log_path,
            secret_key=SECRET_KEY,
            extra_env=phase.env,
        )
        try:
            if not await wait_until_polling(server, process, phase.token, since=0):
                result = Fanout(phase.recipients, problems=[f"{phase.name}: the bot did not start"])
                return result
            result = await measure(server, phase, url, process.pid)
            result.peak_mb = peak_memory_mb(process.pid)
            code = await stop(process)
        finally:
            await kill(process)
        tally(server, phase, result)
    if code != 0:
        result.problems.append(f"{phase.name}: the bot exited with {code}")
    result.problems += scan_log(log_path, [*phase.chat_ids, ADMIN_CHAT])
    return result


# --- the popular template ------------------------------------------------------------------


@dataclass
class Template:
    """What the sleep(0.05) loop achieved."""

    recipients: int
    delivered: int = 0
    spread: float = 0.0
    refusals: int = 0
    errors: int = 0
    timed_out: bool = False

    @property
    def rate(self) -> float:
        """Messages per second, first copy to last."""
        return (self.delivered - 1) / self.spread if self.spread > 0 else 0.0


def _markup(payload: JSONDict) -> InlineKeyboardMarkup | None:
    rows = payload.get("buttons") or []
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=token) for label, token in row] for row in rows]
    )


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def template_loop(
    bot: telegram.Bot, chat_ids: Sequence[int], payload: JSONDict, result: Template
) -> None:
    """Send to each chat in turn, `await asyncio.sleep(0.05)` between sends, as templates do."""
    text, markup = str(payload.get("text", "")), _markup(payload)
    for chat_id in chat_ids:
        for _attempt in range(TEMPLATE_ATTEMPTS):
            try:
                await bot.send_message(chat_id, text, reply_markup=markup)
                break
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
            except TelegramError:
                result.errors += 1
                break
        await asyncio.sleep(TEMPLATE_PAUSE)


async def run_template(chat_ids: Sequence[int], payload: JSONDict, seconds: float) -> Template:
    """The template against a fresh limited fake, bounded by `seconds`."""
    result = Template(len(chat_ids))
    async with new_server(limited=True) as server:
        bot = telegram.Bot("883000:AAE-template-bench-token-0123456789ab", base_url=server.base_url)
        async with bot:
            try:
                await asyncio.wait_for(template_loop(bot, chat_ids, payload, result), seconds)
            except TimeoutError:
                result.timed_out = True
        result.delivered = server.delivered
        result.refusals = server.flood_refusals.total
        if len(server.copy_times) > 1:
            result.spread = server.copy_times[-1] - server.copy_times[0]
    return result


# --- report --------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def print_table(headings: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Rows of right-aligned cells under the headings, labels on the left."""
    label_width = max(len(label) for label, _ in rows)
    widths = [max(12, len(heading)) for heading in headings]

    def line(label: str, cells: Sequence[str]) -> str:
        padded = (f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))
        return f"{label:<{label_width}}  " + "  ".join(padded)

    print(line("", headings))
    for label, cells in rows:
        print(line(label, cells))


def print_unlimited(a: Fanout) -> None:
    """(a): the fan-out against the unlimited fake."""
    print(f"\n(a) {a.recipients} subscribers, unlimited fake, the outbox unpaced")
    share = cpu_share(a)
    per_message = 1000 * a.cpu / a.delivered if a.delivered else 0.0
    fake_share = a.fake_cpu / a.busy if a.busy else 0.0
    fake_per_message = 1000 * a.fake_cpu / a.delivered if a.delivered else 0.0
    print_table(
        ["tipline"],
        [
            ("delivered / duplicates", [f"{a.delivered} / {a.duplicates}"]),
            ("messages/s (first to last copy)", [f"{a.rate:.0f}"]),
            ("alert created -> last copy (s)", [f"{a.end_to_end:.1f}"]),
            ("bot peak memory, VmHWM (MB)", [f"{a.peak_mb:.1f}"]),
            ("bot CPU (% of a core)", [f"{100 * share:.0f}"]),
            ("bot CPU per message (ms)", [f"{per_message:.2f}"]),
            ("fake + residents CPU (% of a core)", [f"{100 * fake_share:.0f}"]),
            ("fake + residents CPU per message (ms)", [f"{fake_per_message:.2f}"]),
            ("admin's report", ["yes" if a.report else "NO"]),
        ],
    )


def print_limited(b: Fanout, c: Template) -> None:
    """(b) beside (c): the same message against the fake enforcing Telegram's limits."""
    print(f"\n(b) vs (c): {b.recipients} chats each, fake enforcing {TELEGRAM_LIMIT} msg/s")
    print_table(
        ["tipline", "sleep(0.05)"],
        [
            ("delivered", [str(b.delivered), str(c.delivered)]),
            ("messages/s", [f"{b.rate:.2f}", f"{c.rate:.2f}"]),
            (
                "share of the limit",
                [f"{b.rate / TELEGRAM_LIMIT:.1%}", f"{c.rate / TELEGRAM_LIMIT:.1%}"],
            ),
            ("429 refusals", [str(b.refusals), str(c.refusals)]),
            ("duplicates / errors", [f"{b.duplicates} / 0", f"0 / {c.errors}"]),
            ("elapsed, first to last copy (s)", [f"{b.spread:.1f}", f"{c.spread:.1f}"]),
        ],
    )


def _latency_cells(latencies: Latencies) -> list[str]:
    samples = latencies.samples
    return [
        str(len(samples)),
        f"{1000 * percentile(samples, 0.5):.1f}",
        f"{1000 * percentile(samples, 0.95):.1f}",
        f"{1000 * max(samples, default=0.0):.1f}",
        str(latencies.timeouts),
    ]


def print_latency(a: Fanout) -> None:
    """(d): residents' first-answer latency idle and during (a)."""
    print("\n(d) a resident's /help, first answer (ms)")
    print_table(
        ["samples", "p50", "p95", "max", "unanswered"],
        [("idle", _latency_cells(a.idle)), ("during (a)", _latency_cells(a.during))],
    )


def cpu_share(result: Fanout) -> float:
    """The bot's CPU while sending, as a share of one core."""
    return result.cpu / result.busy if result.busy else 0.0


def why_slow(results: Results) -> str:
    """What bounds (a) when it stays under the rate goal."""
    a = results.a
    per_message = 1000 * a.cpu / a.delivered if a.delivered else 0.0
    fake_share = a.fake_cpu / a.busy if a.busy else 0.0
    return (
        f"the bot used {cpu_share(a):.0%} of one core, {per_message:.2f} ms per message; "
        f"the fake server and the residents, on the other core, {fake_share:.0%} of one"
    )


def goals(results: Results) -> list[tuple[str, str, bool, str]]:
    """Each goal: what, the figure, whether it is met, and why not when it is not."""
    a, b = results.a, results.b
    return [
        (
            f"(a) >= {RATE_GOAL:.0f} msg/s",
            f"{a.rate:.0f}",
            a.rate >= RATE_GOAL,
            why_slow(results),
        ),
        (
            f"(a) peak memory < {MEMORY_GOAL_MB:.0f} MB",
            f"{a.peak_mb:.1f}",
            0 < a.peak_mb < MEMORY_GOAL_MB,
            "",
        ),
        (
            f"(b) >= {LIMIT_SHARE_GOAL:.0%} of {TELEGRAM_LIMIT} msg/s",
            f"{b.rate:.2f}",
            b.rate >= LIMIT_SHARE_GOAL * TELEGRAM_LIMIT,
            "",
        ),
        ("(b) no 429", str(b.refusals), b.refusals == 0 and b.delivered > 0, ""),
    ]


def print_goals(results: Results) -> None:
    """The goals, met or MISSED."""
    print("\ngoals:")
    for label, figure, met, why in goals(results):
        print(f"  {label:<28} {figure:>10}  {'met' if met else 'MISSED'}")
        if why and not met:
            print(f"      {why}")


def report(options: Options, results: Results) -> int:
    """Print every table; 0 unless something was wrong."""
    a, b, c = results.a, results.b, results.c
    print(
        f"Python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"{os.cpu_count()} cores; (a) {options.subscribers} subscribers, (b)/(c) "
        f"{options.limited} chats, {options.residents} residents"
    )
    print_unlimited(a)
    print_limited(b, c)
    print_latency(a)
    print_goals(results)
    problems = [*a.problems, *b.problems]
    unanswered = a.idle.timeouts + a.during.timeouts
    if unanswered:
        problems.append(f"(d): {unanswered} resident message(s) never answered")
    if c.errors:
        problems.append(f"(c): {c.errors} send(s) refused other than with 429")
    if c.timed_out or c.delivered < c.recipients:
        print(f"\nnote: the template delivered {c.delivered} of {c.recipients} in time")
    print(f"\ncorrectness: {'OK' if not problems else 'PROBLEMS'}")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


# --- command line ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """Command line options."""

    subscribers: int
    limited: int
    residents: int
    idle_seconds: float
    phase_timeout: float | None


def phases(options: Options, folder: Path) -> tuple[Phase, Phase]:
    """(a) unlimited with residents, (b) limited without."""
    unlimited = Phase(
        "a",
        options.subscribers,
        "881000:AAE-fanout-bench-unlimited-0123456789",
        folder / "a",
        {"TIPLINE_TELEGRAM_MESSAGES_PER_SECOND": UNPACED},
        options.residents,
        options.idle_seconds,
        options.phase_timeout or 60 + options.subscribers / 200,
        limited=False,
    )
    limited = Phase(
        "b",
        options.limited,
        "882000:AAE-fanout-bench-limited-0123456789ab",
        folder / "b",
        {},
        0,
        0.0,
        options.phase_timeout or 60 + 2 * options.limited / TELEGRAM_LIMIT,
        limited=True,
    )
    return unlimited, limited


@dataclass(frozen=True)
class Results:
    """Every phase's figures."""

    a: Fanout
    b: Fanout
    c: Template


async def run(options: Options) -> Results:
    """Every phase, one after the other."""
    with tempfile.TemporaryDirectory(prefix="tipline-fanout-") as tmp:
        unlimited, limited = phases(options, Path(tmp))
        a = await run_tipline(unlimited)
        b = await run_tipline(limited)
        chats = [FIRST_CHAT["c"] + n for n in range(options.limited)]
        c = await run_template(chats, b.payload, limited.timeout)
    return Results(a, b, c)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else "",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--subscribers", type=int, default=100_000, help="(a)'s subscribers")
    parser.add_argument(
        "--limited", type=int, default=1500, help="(b)'s and (c)'s chats, at 30 msg/s"
    )
    parser.add_argument("--residents", type=int, default=4, help="residents timing /help")
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="residents' time before the alert"
    )
    parser.add_argument(
        "--phase-timeout",
        type=float,
        default=None,
        help="seconds a phase's sending may take (default: from its size)",
    )
    args = parser.parse_args(argv)
    if args.subscribers < 2 or args.limited < 2 or args.residents < 0:
        parser.error("--subscribers and --limited must be at least 2, --residents at least 0")
    return Options(
        subscribers=args.subscribers,
        limited=args.limited,
        residents=args.residents,
        idle_seconds=max(0.0, args.idle_seconds),
        phase_timeout=args.phase_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    options = parse_args(argv)
    return report(options, asyncio.run(run(options)))


if __name__ == "__main__":
    sys.exit(main())
