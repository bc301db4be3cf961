"""Throughput of tipline's tip flow beside two python-telegram-bot baselines, side by side.

    .venv/bin/python bench/throughput.py [--rounds 3] [--citizens 200] [--flows-per-citizen 2]
        [--warmup-flows 20] [--step-timeout 15] [--phase-timeout 90] [--postgres URL|auto]

One fake Bot API server (tests/fake_telegram.py, strict) and the simulated citizens run in this
process; each bot under test runs as its own process, so each side gets a core. The bots:

    echo bot     bench/echo_bot.py: PTB defaults, exactly one sendMessage per update (the floor)
    example bot  bench/example_bot.py: the tip flow as PTB's examples teach it (ConversationHandler,
                 PicklePersistence, updates one at a time)
    tipline      `tipline run` on a fresh data folder (SQLite)
    tipline (PostgreSQL)  the same on a fresh PostgreSQL database, only with --postgres

Each round runs every bot once, one after the other on the same server, in an order that rotates
from round to round (round 1: echo, example, tipline; round 2: tipline, echo, example; ...). Each
phase has a fresh bot token, a fresh chat id range and a fresh data folder (and database). It
starts the bot, waits for its first getUpdates, warms up with a few flows on other chats, then
lets every citizen (user id = chat id) run its flows concurrently, and stops the bot. A flow is
9 updates, each injected only after the bot's answer to the previous one has arrived
(event-driven, no polling):

    tip flow (tipline, example bot): /tip, press a category, area name, place text, description
        text, press "skip files", press "earlier today", press "stay anonymous", press "send tip"
    echo bot: the same 4 texts at the same positions, and at the 5 press positions a press on
        the button under the last echo

Measured per phase: updates/s; first-answer latency p50/p95 (inject -> the first successful
sendMessage or editMessageText to that chat); CPU ms per update (the bot process's user+system
time from /proc/<pid>/stat during the measured part, divided by the updates); peak memory (the
bot process's VmHWM from /proc/<pid>/status just before it is stopped); Bot API calls per update
(getUpdates not counted); errors and timeouts. PostgreSQL's own CPU is not the bot's: it shows
in "other processes CPU". An answer is complete at its last message, the one carrying the next
prompt: by default the first message with inline buttons (see Step.ends_with, and TIPLINE_FLOW
for tipline's exceptions). Messages after a complete answer, and reply keyboards where the flow
expects none, are counted as out of place: non-zero means a flow no longer matches its bot.
Every wait is bounded (--step-timeout, --phase-timeout); a stuck citizen is counted and stops,
and the run still finishes.

Printed: one line per bot per round, then the median over the rounds of each figure, the ratios
of tipline's medians to the baselines', and the goals (tipline >= 0.8x the echo bot's updates/s
and ahead of the example bot; p95 <= 2x, CPU per update <= 2x, peak memory <= 1.5x the echo
bot's). A flow of the tip-flow bots counts as completed only when its last answer carries a tip
code; after each phase the tips the bot stored (tipline: its tips table; example bot: its
pickle) must equal the completed plus warm-up flows. The exit status is 1 when anything was
wrong (errors, timeouts, out-of-place messages, errors in a bot's log, a tip count that does not
match); missed performance goals do not change it.

--postgres takes a SQLAlchemy URL (postgresql+asyncpg://...) of a server where databases may be
created (default: $TIPLINE_BENCH_POSTGRES_URL), or `auto` to start a throwaway one with
scripts/test-postgres. Each round then adds "tipline (PostgreSQL)" on a database created for the
phase and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import platform
import re
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Literal

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import telegram  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from tests.fake_telegram import (  # noqa: E402
    BotState,
    ChatKey,
    FakeTelegramServer,
    JSONDict,
    inline_buttons,
)

CODE_RE = re.compile(r"\b[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{4}\b")
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnop"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
FIRST_USER_ID = 900_000_000
PHASE_USER_IDS = 1_000_000  # each phase's chats: the citizens, then the warm-up chats
WARMUP_USER_OFFSET = 500_000
BOT_ENV_PREFIXES = ("TIPLINE_", "ECHO_BOT_", "EXAMPLE_BOT_")


# Which message ends the bot's answer to a step: the first one sent with inline buttons, the
# first with a reply keyboard (tipline's location request follows an inline prompt as its own
# message), or any message at all.
EndsWith = Literal["inline", "keyboard", "any"]


@dataclass(frozen=True)
class Step:
    """One update a citizen sends (a text, or a press on a button by label); its answer's end."""

    kind: Literal["text", "press"]
    value: str
    ends_with: EndsWith = "inline"


# The walk of tests/test_telegram_e2e.py (walk_tip_vi), starting with /tip. Every answer ends at
# its first message with inline buttons, except where a step says otherwise.
TIPLINE_FLOW = (
    Step("text", "/tip"),
    Step("press", "Ma túy"),  # the area prompt: one message (location is one press away)
    Step("text", "Bến Thành"),  # one match: chosen, on to the place prompt
    Step("text", "Quán nước đầu hẻm 45 Nguyễn Trãi"),
    Step("text", "Có nhóm thanh niên bán ma túy vào buổi tối, khoảng 21 giờ."),
    Step("press", "Bỏ qua ➡"),
    Step("press", "Lúc trước, trong hôm nay"),
    Step("press", "🕶 Giữ ẩn danh"),
    Step("press", "✅ Gửi tin báo"),  # the code and PIN, then the offer of area alerts
)
# The same walk; every prompt is one message with inline buttons, except the last answer (the
# code and PIN, no buttons).
EXAMPLE_FLOW = (
    *(Step(step.kind, step.value) for step in TIPLINE_FLOW[:-1]),
    Step(TIPLINE_FLOW[-1].kind, TIPLINE_FLOW[-1].value, ends_with="any"),
)
# One message per update; a press is on the button under the last echo.
ECHO_FLOW = tuple(
    Step(step.kind, step.value if step.kind == "text" else "↩ Again", ends_with="any")
    for step in TIPLINE_FLOW
)
FLOW_LENGTH = len(TIPLINE_FLOW)

ProfileKey = Literal["echo", "example", "tipline", "tipline-pg"]


@dataclass(frozen=True)
class Profile:
    """A bot under test and how a citizen talks to it."""

    key: ProfileKey
    name: str
    flow: tuple[Step, ...]
    expect_code: bool  # the last answer of a flow carries a tip code, and the bot stores tips


ECHO = Profile("echo", "echo bot", ECHO_FLOW, expect_code=False)
EXAMPLE = Profile("example", "example bot", EXAMPLE_FLOW, expect_code=True)
TIPLINE = Profile("tipline", "tipline", TIPLINE_FLOW, expect_code=True)
TIPLINE_PG = Profile("tipline-pg", "tipline (PostgreSQL)", TIPLINE_FLOW, expect_code=True)


@dataclass(frozen=True)
class Options:
    """Command line options."""

    rounds: int
    citizens: int
    flows_per_citizen: int
    warmup_flows: int
    step_timeout: float
    phase_timeout: float
    postgres: str | None  # admin URL of a PostgreSQL server, "auto", or None


@dataclass(frozen=True)
class Phase:
    """One bot in one round: its own token, chat ids and folder."""

    profile: Profile
    number: int  # counts the phases of the run from 0
    folder: Path

    @property
    def token(self) -> str:
        """A bot token no earlier phase used, so no update is left over for this bot."""
        return f"{710_000 + self.number}:AAE-{self.profile.key}-bench-token-0123456789abcdef"

    @property
    def first_user_id(self) -> int:
        """The first citizen's user (and chat) id; warm-up chats follow WARMUP_USER_OFFSET on."""
        return FIRST_USER_ID + self.number * PHASE_USER_IDS

    @property
    def data_dir(self) -> Path:
        """The bot's data folder."""
        return self.folder / "data"


# --- the fake server and what each chat is waiting for -------------------------------------


def _markup_kind(params: JSONDict) -> str:
    """What a sent message carries: "inline" buttons, a reply "keyboard", or "plain"."""
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return "inline"
    if isinstance(markup, dict) and "keyboard" in markup:
        return "keyboard"
    return "plain"


class ChatWatch:
    """The answer a citizen is waiting for in its chat, filled in by the server's handler."""

    __slots__ = (
        "done",
        "done_at",
        "ends_with",
        "first_reply_at",
        "keyboard_message",
        "kinds",
        "step",
        "stray_note",
        "strays",
        "texts",
    )

    def __init__(self) -> None:
        self.done: asyncio.Future[None] | None = None
        self.step = 0
        self.ends_with: EndsWith = "any"
        self.first_reply_at: float | None = None
        self.done_at = 0.0
        self.texts: list[str] = []
        self.kinds: list[str] = []  # markup kind of each message of the answer so far
        self.keyboard_message: JSONDict | None = None
        self.strays = 0  # out-of-place messages: a step's ends_with no longer fits the bot
        self.stray_note = ""

    def arm(self, step: int, ends_with: EndsWith) -> asyncio.Future[None]:
        """Start waiting for the answer to step `step` (from 1), about to be injected."""
        self.done = asyncio.get_running_loop().create_future()
        self.step = step
        self.ends_with = ends_with
        self.first_reply_at = None
        self.texts = []
        self.kinds = []
        return self.done

    def _stray(self, note: str) -> None:
        self.strays += 1
        self.stray_note = self.stray_note or note

    def on_message(self, message: JSONDict, params: JSONDict, now: float) -> None:
        """A sendMessage or editMessageText to this chat succeeded."""
        kind = _markup_kind(params)
        done = self.done
        if done is None or done.done():
            self._stray(f"a {kind} message after the answer to step {self.step} was complete")
            return
        if kind == "keyboard" and self.ends_with != "keyboard":
            self._stray(f"a reply keyboard in the answer to step {self.step} (not its ends_with)")
        if self.first_reply_at is None:
            self.first_reply_at = now
        self.texts.append(str(message.get("text", "")))
        self.kinds.append(kind)
        if kind == "inline":
            self.keyboard_message = message
        if self.ends_with in ("any", kind):
            self.done_at = now
            done.set_result(None)


class BenchServer(FakeTelegramServer):
    """The fake Bot API (strict), telling each watched chat about its new messages as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.watches: dict[ChatKey, ChatWatch] = {}
        self.register_method("sendMessage", self._send_and_notify)
        self.register_method("editMessageText", self._edit_and_notify)

    def _send_and_notify(self, bot: BotState, params: JSONDict) -> JSONDict:
        message = self._send_message(bot, params)
        self._notify(message, params)
        return message

    def _edit_and_notify(self, bot: BotState, params: JSONDict) -> JSONDict | bool:
        edited = self._edit_message_text(bot, params)
        if isinstance(edited, dict):
            self._notify(edited, params)
        return edited

    def _notify(self, message: JSONDict, params: JSONDict) -> None:
        watch = self.watches.get(message["chat"]["id"])
        if watch is not None:
            watch.on_message(message, params, time.perf_counter())


# --- citizens --------------------------------------------------------------------------------


@dataclass
class PhaseStats:
    """What one phase measured."""

    injected: int = 0
    updates: int = 0
    flows: int = 0
    errors: int = 0
    timeouts: int = 0
    reply_latencies: list[float] = field(default_factory=list)
    step_latencies: dict[int, list[float]] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    bot_cpu: float = 0.0
    bench_cpu: float = 0.0
    other_cpu: float = 0.0  # everything else on the machine: noise when well above 0
    peak_memory_mb: float = 0.0  # the bot process's VmHWM just before it was stopped
    tips_stored: int | None = None
    warmup_flows: int = 0
    unanswered_submits: int = 0  # last-step presses never answered: a tip may exist or not
    api_calls: int = 0  # Bot API calls other than getUpdates, while measuring
    polls: int = 0  # getUpdates calls that returned updates, while measuring
    strays: int = 0  # out-of-place messages (0 unless a flow no longer matches its bot)
    log_warnings: int = 0  # WARNING lines in the bot's own output

    def fail(self, detail: str, *, timeout: bool = False, count: int = 1) -> None:
        """Count errors (or timeouts) and keep a few examples."""
        if timeout:
            self.timeouts += count
        else:
            self.errors += count
        self.note(detail)

    def note(self, detail: str) -> None:
        """Keep an example of something wrong (the first few)."""
        if len(self.error_samples) < 5:
            self.error_samples.append(detail)


def _press_data(message: JSONDict | None, label: str) -> str | None:
    for button in inline_buttons(message or {}):
        if button.get("text") == label and isinstance(button.get("callback_data"), str):
            return str(button["callback_data"])
    return None


def _no_answer(user_id: int, index: int, step: Step, watch: ChatWatch) -> str:
    """Why a step timed out, with what did arrive."""
    where = f"user {user_id} step {index + 1} ({step.value!r})"
    if not watch.kinds:
        return f"{where}: no answer"
    return (
        f"{where}: no message with ends_with={step.ends_with!r} after {len(watch.kinds)} "
        f"message(s) {watch.kinds}, last {watch.texts[-1][:50]!r}: does the flow fit the bot?"
    )


async def citizen(
    server: BenchServer,
    profile: Profile,
    token: str,
    user_id: int,
    *,
    flows: int,
    stats: PhaseStats,
    step_timeout: float,
) -> None:
    """Run `flows` flows in this citizen's own chat, one update at a time."""
    user: JSONDict = {"id": user_id, "is_bot": False, "first_name": "Citizen"}
    watch = server.watches[user_id] = ChatWatch()
    for _flow in range(flows):
        for index, step in enumerate(profile.flow):
            if step.kind == "text":
                update = server.message_update(user, user_id, step.value)
            else:
                data = _press_data(watch.keyboard_message, step.value)
                if data is None:
                    shown = watch.texts[-1][:60] if watch.texts else ""
                    stats.fail(
                        f"user {user_id} step {index + 1}: no button {step.value!r} "
                        f"under the last prompt {shown!r}"
                    )
                    return
                assert watch.keyboard_message is not None
                update = server.callback_update(user, user_id, watch.keyboard_message, data)
            answered = watch.arm(index + 1, step.ends_with)
            injected_at = time.perf_counter()
            server.inject_update(token, update)
            stats.injected += 1
            last = index == len(profile.flow) - 1
            stats.unanswered_submits += last
            try:
                await asyncio.wait_for(answered, step_timeout)
            except TimeoutError:
                stats.fail(_no_answer(user_id, index, step, watch), timeout=True)
                return
            stats.unanswered_submits -= last
            stats.updates += 1
            assert watch.first_reply_at is not None
            stats.reply_latencies.append(watch.first_reply_at - injected_at)
            stats.step_latencies.setdefault(index, []).append(watch.done_at - injected_at)
        if profile.expect_code and not CODE_RE.search("\n".join(watch.texts)):
            stats.fail(f"user {user_id}: no tip code in {watch.texts!r}")
            return
        stats.flows += 1


async def crowd(
    server: BenchServer, phase: Phase, user_ids: Sequence[int], flows: int, options: Options
) -> PhaseStats:
    """Run the citizens concurrently, bounded by the phase timeout."""
    stats = PhaseStats()
    if not user_ids:
        return stats
    tasks = [
        asyncio.create_task(
            citizen(
                server,
                phase.profile,
                phase.token,
                uid,
                flows=flows,
                stats=stats,
                step_timeout=options.step_timeout,
            )
        )
        for uid in user_ids
    ]
    started = time.perf_counter()
    _done, pending = await asyncio.wait(tasks, timeout=options.phase_timeout)
    stats.elapsed = time.perf_counter() - started
    for task in pending:
        task.cancel()
        stats.fail("citizen still running at the phase timeout", timeout=True)
    await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            stats.fail(f"citizen crashed: {task.exception()!r}")
    return stats


# --- bot processes -------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_memory_mb(pid: int) -> float:
    """The peak resident memory of a process so far (VmHWM), in MB; 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _machine_busy_seconds() -> float:
    """CPU time all processes of the machine have used (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(value) for value in fields[:8]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _scan_log(path: Path, stats: PhaseStats) -> None:
    """Count the bot's warnings; its errors and tracebacks are errors of the phase."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        if " WARNING " in line:
            stats.log_warnings += 1
        elif any(word in line for word in (" ERROR ", " CRITICAL ", "Traceback")):
            stats.fail(f"bot log: {line[-160:]}")


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(BOT_ENV_PREFIXES)}


def bot_command(
    server: BenchServer, phase: Phase, database_url: str | None
) -> tuple[list[str], dict[str, str]]:
    """How to start the phase's bot: argv and environment."""
    token = phase.token
    if phase.profile is ECHO:
        env = {"ECHO_BOT_TOKEN": token, "ECHO_BOT_API_URL": server.base_url}
        return [sys.executable, str(BENCH_DIR / "echo_bot.py")], _clean_env() | env
    if phase.profile is EXAMPLE:
        env = {
            "EXAMPLE_BOT_TOKEN": token,
            "EXAMPLE_BOT_API_URL": server.base_url,
            "EXAMPLE_BOT_DATA_DIR": str(phase.data_dir),
        }
        return [sys.executable, str(BENCH_DIR / "example_bot.py")], _clean_env() | env
    script = Path(sys.executable).with_name("tipline")
    argv = [str(script), "run"] if script.exists() else [sys.executable, "-m", "bot.cli", "run"]
    env = {
        "TIPLINE_TELEGRAM_TOKEN": token,
        "TIPLINE_TELEGRAM_API_URL": server.base_url,
        "TIPLINE_TELEGRAM_FILE_URL": server.base_file_url,
        "TIPLINE_DATA_DIR": str(phase.data_dir),
        "TIPLINE_WEB_ENABLED": "false",
        "TIPLINE_SECRET_KEY": SECRET_KEY,
        "TIPLINE_TIPS_PER_HOUR": "10000",
        "TIPLINE_FLOOD_MESSAGES": "100000",
        "TIPLINE_LOG_LEVEL": "WARNING",
    }
    if database_url is not None:
        env["TIPLINE_DATABASE_URL"] = database_url
    return argv, _clean_env() | env


async def _wait_until_polling(
    server: BenchServer, process: asyncio.subprocess.Process, token: str
) -> bool:
    """True once the bot has called getUpdates; False if it exited or took too long."""
    polled = asyncio.ensure_future(
        server.wait_for_call(
            "getUpdates", token=token, since=len(server.calls), max_wait=START_TIMEOUT
        )
    )
    exited = asyncio.ensure_future(process.wait())
    await asyncio.wait({polled, exited}, return_when=asyncio.FIRST_COMPLETED)
    for waiter in (polled, exited):
        waiter.cancel()
    await asyncio.gather(polled, exited, return_exceptions=True)
    return not polled.cancelled() and polled.exception() is None


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()


def _count_calls(server: BenchServer, token: str, first_call: int, stats: PhaseStats) -> None:
    """The phase's Bot API calls since `first_call` (getUpdates apart)."""
    for record in server.calls[first_call:]:
        if record["token"] != token:
            continue
        if record["method"] != "getUpdates":
            stats.api_calls += 1
        elif record["result"]:
            stats.polls += 1


async def _warm_and_measure(
    server: BenchServer, phase: Phase, pid: int, ids: Sequence[int], options: Options
) -> PhaseStats:
    """Warm-up flows on their own chats, then the measured flows of all citizens."""
    warm_ids = [phase.first_user_id + WARMUP_USER_OFFSET + i for i in range(options.warmup_flows)]
    warm = await crowd(server, phase, warm_ids, 1, options)
    before = (_cpu_seconds(pid), time.process_time(), _machine_busy_seconds())
    first_call = len(server.calls)
    stats = await crowd(server, phase, ids, options.flows_per_citizen, options)
    stats.bot_cpu = _cpu_seconds(pid) - before[0]
    stats.bench_cpu = time.process_time() - before[1]
    machine = _machine_busy_seconds() - before[2]
    stats.other_cpu = max(0.0, machine - stats.bot_cpu - stats.bench_cpu)
    _count_calls(server, phase.token, first_call, stats)
    stats.warmup_flows = warm.flows
    stats.unanswered_submits += warm.unanswered_submits
    if warm.error_samples:
        failed = warm.errors + warm.timeouts
        stats.fail(f"warm-up: {failed} failed, e.g. {warm.error_samples[0]}", count=failed)
    return stats


def _tally_strays(server: BenchServer, phase: Phase, stats: PhaseStats) -> None:
    """Out-of-place messages in the phase's chats, with the first one's description."""
    first = phase.first_user_id
    for uid, watch in server.watches.items():
        if not (isinstance(uid, int) and first <= uid < first + PHASE_USER_IDS and watch.strays):
            continue
        if not stats.strays:
            stats.note(f"user {uid}: {watch.stray_note}: does the flow fit the bot?")
        stats.strays += watch.strays


async def run_phase(
    server: BenchServer, phase: Phase, command: tuple[list[str], dict[str, str]], options: Options
) -> PhaseStats:
    """Start the bot, wait for polling, warm up, measure, read its peak memory, stop it."""
    log_path = phase.folder / "bot.log"
    argv, env = command
    with _open_log(log_path) as log:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=phase.folder, stdout=log, stderr=subprocess.STDOUT
        )
    stats = PhaseStats()
    try:
        if not await _wait_until_polling(server, process, phase.token):
            stats.fail(f"no getUpdates within {START_TIMEOUT:g}s: {_log_tail(log_path, 5)}")
            return stats
        ids = [phase.first_user_id + i for i in range(options.citizens)]
        stats = await _warm_and_measure(server, phase, process.pid, ids, options)
    finally:
        peak = _peak_memory_mb(process.pid)
        await _stop(process)
        stats.peak_memory_mb = peak
    _tally_strays(server, phase, stats)
    if process.returncode not in (0, -signal.SIGTERM):
        stats.error_samples.insert(0, f"bot exited with {process.returncode}")
        stats.errors += 1
    _scan_log(log_path, stats)
    return stats


# --- stored tips and databases ---------------------------------------------------------------


def count_sqlite_tips(data_dir: Path) -> int | None:
    """Rows in the tips table of the SQLite file tipline left behind."""
    path = data_dir / "tipline.sqlite3"
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            row = db.execute("SELECT COUNT(*) FROM tips").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0])


def count_pickled_tips(data_dir: Path) -> int | None:
    """Tips in the example bot's bot_data, from the pickle PicklePersistence wrote at shutdown."""
    try:
        with (data_dir / "example_bot.pickle").open("rb") as file:
            data = pickle.load(file)
    except (OSError, EOFError, pickle.UnpicklingError):
        return None
    return len(data.get("bot_data", {}).get("tips", {}))


async def count_postgres_tips(url: str) -> int | None:
    """Rows in the tips table of a PostgreSQL database."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT COUNT(*) FROM tips"))).scalar_one()
    except (SQLAlchemyError, OSError):
        return None
    finally:
        await engine.dispose()
    return int(count)


async def create_database(admin_url: str) -> str:
    """A new, empty database on the server of `admin_url`; its URL."""
    name = f"tipline_bench_{secrets.token_hex(6)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, url: str) -> None:
    """Drop a database create_database made, even with connections left."""
    name = make_url(url).database
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


def _free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_postgres() -> tuple[str, str]:
    """Start a throwaway PostgreSQL with scripts/test-postgres on a free port: folder and URL."""
    script = str(ROOT / "scripts" / "test-postgres")
    env = os.environ | {"TIPLINE_TEST_POSTGRES_PORT": str(_free_port())}
    result = subprocess.run(
        ["bash", script], check=True, stdout=subprocess.PIPE, text=True, env=env
    )
    folder, url = result.stdout.split()[-2:]
    return folder, url


def stop_postgres(folder: str) -> None:
    """Stop what start_postgres started and remove its folder."""
    subprocess.run(["bash", str(ROOT / "scripts" / "test-postgres"), "stop", folder], check=False)


def _local_tips(phase: Phase) -> int | None:
    """The tips a bot on local files stored: the example bot's pickle, tipline's SQLite file."""
    if phase.profile is EXAMPLE:
        return count_pickled_tips(phase.data_dir)
    return count_sqlite_tips(phase.data_dir)


async def bench_phase(server: BenchServer, phase: Phase, options: Options) -> PhaseStats:
    """One phase on a fresh folder (and database); the tips stored are counted after it."""
    phase.data_dir.mkdir(parents=True)
    if phase.profile is not TIPLINE_PG or options.postgres is None:
        stats = await run_phase(server, phase, bot_command(server, phase, None), options)
        if phase.profile.expect_code:
            stats.tips_stored = _local_tips(phase)
        return stats
    try:
        database_url = await create_database(options.postgres)
    except (SQLAlchemyError, OSError) as exc:
        stats = PhaseStats()
        stats.fail(f"cannot create a PostgreSQL database: {exc!r}"[:300])
        return stats
    try:
        command = bot_command(server, phase, database_url)
        stats = await run_phase(server, phase, command, options)
        stats.tips_stored = await count_postgres_tips(database_url)
    finally:
        try:
            await drop_database(options.postgres, database_url)
        except (SQLAlchemyError, OSError) as exc:
            print(f"could not drop {make_url(database_url).database}: {exc!r}", file=sys.stderr)
    return stats


# --- rounds --------------------------------------------------------------------------------


@dataclass
class Results:
    """Every phase's figures, by bot, in round order; and each round's order of bots."""

    profiles: tuple[Profile, ...]
    phases: dict[ProfileKey, list[PhaseStats]] = field(default_factory=dict)
    orders: list[list[Profile]] = field(default_factory=list)


def round_order(profiles: Sequence[Profile], round_index: int) -> list[Profile]:
    """The bots of a round: the list rotated right by the round's index (0: as given)."""
    cut = len(profiles) - round_index % len(profiles)
    return [*profiles[cut:], *profiles[:cut]]


async def run(options: Options) -> Results:
    """All rounds against one server, each round running every bot once."""
    profiles = (ECHO, EXAMPLE, TIPLINE, *((TIPLINE_PG,) if options.postgres else ()))
    results = Results(profiles, {profile.key: [] for profile in profiles})
    server = BenchServer()
    await server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="tipline-bench-") as tmp:
            number = 0
            for round_index in range(options.rounds):
                order = round_order(profiles, round_index)
                results.orders.append(order)
                for profile in order:
                    folder = Path(tmp) / f"round{round_index + 1}-{profile.key}"
                    phase = Phase(profile, number, folder)
                    results.phases[profile.key].append(await bench_phase(server, phase, options))
                    number += 1
    finally:
        await server.stop()
    return results


# --- report --------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _rate(amount: float, per: float) -> float:
    return amount / per if per > 0 else 0.0


def updates_per_s(stats: PhaseStats) -> float:
    """Answered updates per second of the measured part."""
    return _rate(stats.updates, stats.elapsed)


def p50_ms(stats: PhaseStats) -> float:
    """Median first-answer latency."""
    return 1000 * percentile(stats.reply_latencies, 0.5)


def p95_ms(stats: PhaseStats) -> float:
    """95th percentile first-answer latency."""
    return 1000 * percentile(stats.reply_latencies, 0.95)


def cpu_ms_per_update(stats: PhaseStats) -> float:
    """The bot process's CPU time per answered update."""
    return 1000 * _rate(stats.bot_cpu, stats.updates)


def peak_mb(stats: PhaseStats) -> float:
    """The bot process's peak resident memory."""
    return stats.peak_memory_mb


def calls_per_update(stats: PhaseStats) -> float:
    """Bot API calls (getUpdates apart) per answered update."""
    return _rate(stats.api_calls, stats.updates)


Figure = Callable[[PhaseStats], float]
MEDIAN_ROWS: tuple[tuple[str, str, Figure], ...] = (
    ("updates/s", ".1f", updates_per_s),
    ("first answer p50 (ms)", ".1f", p50_ms),
    ("first answer p95 (ms)", ".1f", p95_ms),
    ("CPU per update (ms)", ".2f", cpu_ms_per_update),
    ("peak memory (MB)", ".1f", peak_mb),
    ("Bot API calls per update", ".2f", calls_per_update),
    ("completed flows/s", ".2f", lambda s: _rate(s.flows, s.elapsed)),
    ("updates per getUpdates batch", ".1f", lambda s: _rate(s.updates, s.polls)),
    ("bot process CPU (% of a core)", ".0f", lambda s: 100 * _rate(s.bot_cpu, s.elapsed)),
    ("server+driver CPU (% of a core)", ".0f", lambda s: 100 * _rate(s.bench_cpu, s.elapsed)),
    ("other processes CPU (% of a core)", ".0f", lambda s: 100 * _rate(s.other_cpu, s.elapsed)),
    ("elapsed (s)", ".2f", lambda s: s.elapsed),
)
TOTAL_ROWS: tuple[tuple[str, Callable[[PhaseStats], int]], ...] = (
    ("answered updates", lambda s: s.updates),
    ("completed flows", lambda s: s.flows),
    ("errors", lambda s: s.errors),
    ("timeouts", lambda s: s.timeouts),
    ("out-of-place messages", lambda s: s.strays),
    ("warnings in the bot's log", lambda s: s.log_warnings),
)
RATIO_COLUMNS: tuple[tuple[str, Figure], ...] = (
    ("updates/s", updates_per_s),
    ("p95", p95_ms),
    ("CPU/update", cpu_ms_per_update),
    ("peak memory", peak_mb),
)


def median(rounds: Sequence[PhaseStats], figure: Figure) -> float:
    """The median of one figure over the rounds."""
    return statistics.median(figure(stats) for stats in rounds) if rounds else 0.0


def tips_ok(profile: Profile, stats: PhaseStats) -> bool | None:
    """Whether the bot stored exactly the completed and warm-up flows' tips (None: no tips)."""
    if not profile.expect_code:
        return None
    expected = stats.flows + stats.warmup_flows
    stored = stats.tips_stored
    return stored is not None and expected <= stored <= expected + stats.unanswered_submits


def _tips_note(profile: Profile, stats: PhaseStats) -> str:
    verdict = tips_ok(profile, stats)
    if verdict is None:
        return ""
    expected = stats.flows + stats.warmup_flows
    maybe = f"(+{stats.unanswered_submits}?)" if stats.unanswered_submits else ""
    return f"  tips {stats.tips_stored}/{expected}{maybe} {'OK' if verdict else 'MISMATCH'}"


def round_line(profile: Profile, stats: PhaseStats, width: int) -> str:
    """One bot's figures in one round, on one line."""
    return (
        f"  {profile.name:<{width}} {updates_per_s(stats):7.1f} upd/s  p50 {p50_ms(stats):6.1f}"
        f"  p95 {p95_ms(stats):6.1f} ms  CPU {cpu_ms_per_update(stats):5.2f} ms/upd"
        f"  peak {peak_mb(stats):5.1f} MB  {calls_per_update(stats):4.2f} calls/upd"
        f"  err {stats.errors} t/o {stats.timeouts} out-of-place {stats.strays}"
        f"{_tips_note(profile, stats)}"
    )


def print_rounds(results: Results) -> None:
    """Each round's figures, one line per bot, in the order they ran."""
    width = max(len(profile.name) for profile in results.profiles)
    for index, order in enumerate(results.orders):
        print(f"round {index + 1}: {', '.join(profile.name for profile in order)}")
        for profile in order:
            print(round_line(profile, results.phases[profile.key][index], width))


def print_table(headings: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Rows of right-aligned cells under the headings, labels on the left."""
    label_width = max(len(label) for label, _ in rows)
    widths = [max(10, len(heading)) for heading in headings]

    def line(label: str, cells: Sequence[str]) -> str:
        padded = (f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))
        return f"{label:<{label_width}}  " + "  ".join(padded)

    print(line("", headings))
    for label, cells in rows:
        print(line(label, cells))


def step_p50(index: int) -> Figure:
    """The median completion time of one step of the flow (from 0)."""
    return lambda stats: 1000 * percentile(stats.step_latencies.get(index, []), 0.5)


def _tips_verdict(profile: Profile, rounds: Sequence[PhaseStats]) -> str:
    verdicts = [tips_ok(profile, stats) for stats in rounds]
    return "-" if None in verdicts else "OK" if all(verdicts) else "MISMATCH"


def print_medians(results: Results) -> None:
    """The median of each figure over the rounds (totals for counts), a column per bot."""
    columns = [results.phases[profile.key] for profile in results.profiles]
    rows: list[tuple[str, Sequence[str]]] = [
        (label, [format(median(rounds, figure), fmt) for rounds in columns])
        for label, fmt, figure in MEDIAN_ROWS
    ]
    rows += [
        (
            f"{label} (all rounds)",
            [str(sum(count(stats) for stats in rounds)) for rounds in columns],
        )
        for label, count in TOTAL_ROWS
    ]
    tips = [_tips_verdict(p, rounds) for p, rounds in zip(results.profiles, columns, strict=True)]
    rows.append(("tips stored = completed flows", tips))
    rows += [
        (f"step {i + 1} completion p50 (ms)", [f"{median(r, step_p50(i)):.0f}" for r in columns])
        for i in range(FLOW_LENGTH)
    ]
    print(f"\nmedian of {len(results.orders)} round(s):")
    print_table([profile.name for profile in results.profiles], rows)


def _ratio(results: Results, top: Profile, bottom: Profile, figure: Figure) -> float:
    """top's median of a figure over bottom's."""
    return _rate(
        median(results.phases[top.key], figure), median(results.phases[bottom.key], figure)
    )


def _tiplines(results: Results) -> list[Profile]:
    return [profile for profile in results.profiles if profile.key.startswith("tipline")]


def print_ratios(results: Results) -> None:
    """Tipline's medians over each baseline's."""
    rows = [
        (
            f"{top.name} / {base.name}",
            [f"{_ratio(results, top, base, figure):.2f}x" for _, figure in RATIO_COLUMNS],
        )
        for top in _tiplines(results)
        for base in (ECHO, EXAMPLE)
    ]
    print("\nratios of the medians:")
    print_table([name for name, _ in RATIO_COLUMNS], rows)


def goals(results: Results, top: Profile) -> list[tuple[str, float, bool]]:
    """Each goal for a tipline variant: what, the ratio of the medians, and whether it is met."""
    vs_echo = _ratio(results, top, ECHO, updates_per_s)
    vs_example = _ratio(results, top, EXAMPLE, updates_per_s)
    p95 = _ratio(results, top, ECHO, p95_ms)
    cpu = _ratio(results, top, ECHO, cpu_ms_per_update)
    memory = _ratio(results, top, ECHO, peak_mb)
    return [
        ("updates/s >= 0.8x the echo bot's", vs_echo, vs_echo >= 0.8),
        ("updates/s ahead of the example bot's", vs_example, vs_example > 1.0),
        ("first answer p95 <= 2x the echo bot's", p95, p95 <= 2.0),
        ("CPU per update <= 2x the echo bot's", cpu, cpu <= 2.0),
        ("peak memory <= 1.5x the echo bot's", memory, memory <= 1.5),
    ]


def print_goals(results: Results) -> None:
    """Each goal for each tipline variant, and whether the medians meet it."""
    for top in _tiplines(results):
        print(f"\ngoals for {top.name} (medians):")
        for label, ratio, met in goals(results, top):
            print(f"  {label:<40} {ratio:5.2f}x  {'met' if met else 'MISSED'}")


def print_problems(results: Results) -> None:
    """A few examples of what went wrong in each phase."""
    for profile in results.profiles:
        for index, stats in enumerate(results.phases[profile.key]):
            for sample in stats.error_samples:
                print(f"  round {index + 1} {profile.name}: {sample}")


def all_correct(results: Results) -> bool:
    """No errors, timeouts or out-of-place messages, and every tip count right."""
    for profile in results.profiles:
        for stats in results.phases[profile.key]:
            if stats.errors or stats.timeouts or stats.strays:
                return False
            if tips_ok(profile, stats) is False:
                return False
    return True


def report(options: Options, results: Results) -> int:
    """Print rounds, medians, ratios and goals; 0 when every phase was fully correct."""
    print(
        f"Python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"{os.cpu_count()} cores; {options.rounds} round(s) of {options.citizens} concurrent "
        f"citizens x {options.flows_per_citizen} flows x {FLOW_LENGTH} updates per bot "
        f"(+{options.warmup_flows} warm-up flows)"
    )
    print_rounds(results)
    print_medians(results)
    print_ratios(results)
    print_goals(results)
    clean = all_correct(results)
    print(f"\ncorrectness: {'OK' if clean else 'PROBLEMS'}")
    print_problems(results)
    return 0 if clean else 1


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else "",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each running every bot")
    parser.add_argument("--citizens", type=int, default=200, help="concurrent citizens")
    parser.add_argument(
        "--flows-per-citizen",
        type=int,
        default=2,
        help=f"flows each citizen runs ({FLOW_LENGTH} updates each)",
    )
    parser.add_argument(
        "--warmup-flows", type=int, default=20, help="warm-up flows per phase, each on its own chat"
    )
    parser.add_argument(
        "--step-timeout", type=float, default=15.0, help="seconds to wait for one answer"
    )
    parser.add_argument(
        "--phase-timeout", type=float, default=90.0, help="seconds one measured phase may take"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TIPLINE_BENCH_POSTGRES_URL") or None,
        help="postgresql+asyncpg:// URL of a server to create databases on, or 'auto' "
        "(scripts/test-postgres); adds tipline on PostgreSQL [$TIPLINE_BENCH_POSTGRES_URL]",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.citizens < 1 or args.flows_per_citizen < 1:
        parser.error("--rounds, --citizens and --flows-per-citizen must be at least 1")
    if args.citizens > WARMUP_USER_OFFSET or args.warmup_flows > WARMUP_USER_OFFSET:
        parser.error(f"--citizens and --warmup-flows may be at most {WARMUP_USER_OFFSET}")
    return Options(
        rounds=args.rounds,
        citizens=args.citizens,
        flows_per_citizen=args.flows_per_citizen,
        warmup_flows=max(0, args.warmup_flows),
        step_timeout=args.step_timeout,
        phase_timeout=args.phase_timeout,
        postgres=args.postgres,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (starting PostgreSQL for --postgres auto) and print the report."""
    options = parse_args(argv)
    postgres_dir: str | None = None
    if options.postgres == "auto":
        try:
            postgres_dir, url = start_postgres()
        except (subprocess.CalledProcessError, OSError, ValueError) as exc:
            print(f"--postgres auto: scripts/test-postgres failed: {exc}", file=sys.stderr)
            return 1
        options = replace(options, postgres=url)
    try:
        results = asyncio.run(run(options))
    finally:
        if postgres_dir is not None:
            stop_postgres(postgres_dir)
    return report(options, results)


if __name__ == "__main__":
    sys.exit(main())
