"""Throughput of the tip flow against a bare python-telegram-bot echo bot, side by side.

    .venv/bin/python bench/throughput.py [--citizens 200] [--flows-per-citizen N]

One fake Bot API server (tests/fake_telegram.py, strict) and the simulated citizens run in
this process; the bot under test runs as a separate process, so each side gets a core. Two
phases, one after the other, on the same server:

(a) bench/echo_bot.py: a PTB `Application` polling with `concurrent_updates(True)`, echoing texts
    and answering presses; the baseline;
(b) `tipline run` on a fresh temporary data folder (SQLite), walked through the whole tip flow.

Each phase starts its bot, waits for its first getUpdates, warms up with a few flows on other
chats, then lets every citizen (user id = chat id, a fresh chat per citizen and phase) run its
flows. A flow is 9 updates (TIP_FLOW), each injected only after the bot's answer to the previous
one has arrived (event-driven, no polling):

    tipline: /tip, press a category, area name (one match: chosen), place text, description
             text, press "skip files", press "earlier today", press "stay anonymous",
             press "send tip"
    echo:    the same 4 texts at the same positions; at the 5 press positions a press on the
             inline button the echo bot attaches to every echo (the bot answers the query and
             sends "pressed ..."): 9 updates and 14 Bot API calls per flow

Per update: reply latency = inject -> the first successful sendMessage or editMessageText
(tipline turns a pressed prompt into the next one) to that chat after the inject; the update is
complete when the last message of the bot's answer, the one carrying the next prompt, has
arrived (tipline: the first message with inline buttons, or after the
category press the location keyboard that follows the area prompt, see Step.ends_with; echo:
the echo). Messages arriving after an answer was complete are counted: non-zero means TIP_FLOW
no longer matches the bot. Every wait is bounded (--step-timeout, --phase-timeout); a stuck
citizen is counted as an error and stops, and the run still finishes. A tipline flow counts as
completed only when its last answer carries a tip code; the tips table is counted after the bot
stops. The exit status is 1 when anything was wrong (errors, timeouts, stray messages, errors
in a bot's log, a tip count that does not match).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import telegram  # noqa: E402

from tests.fake_telegram import (  # noqa: E402
    BotState,
    ChatKey,
    FakeTelegramServer,
    JSONDict,
    inline_buttons,
)

CODE_RE = re.compile(r"\b[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{4}\b")
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnop"
ECHO_TOKEN = "700001:AAE-echo-bench-token-0123456789abcdefghij"
TIPLINE_TOKEN = "700002:AAE-tipline-bench-token-0123456789abcdef"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
WARMUP_USER_OFFSET = 500_000


# Which message ends the bot's answer to a step: the first one sent with inline buttons, with
# a reply keyboard (tipline's location request follows an inline prompt as its own message),
# or any message at all.
EndsWith = Literal["inline", "keyboard", "any"]


@dataclass(frozen=True)
class Step:
    """One update a citizen sends (a text, or a press on the button with this label), and the
    message that ends the bot's answer to it."""

    kind: Literal["text", "press"]
    value: str
    ends_with: EndsWith = "inline"


# The walk of tests/test_telegram_e2e.py (walk_tip_vi), starting with /tip.
TIP_FLOW = (
    Step("text", "/tip"),
    Step("press", "Ma túy", ends_with="keyboard"),  # area prompt, then the location keyboard
    Step("text", "Bến Thành"),  # one match: chosen, on to the place prompt
    Step("text", "Quán nước đầu hẻm 45 Nguyễn Trãi"),
    Step("text", "Có nhóm thanh niên bán ma túy vào buổi tối, khoảng 21 giờ."),
    Step("press", "Bỏ qua ➡"),
    Step("press", "Lúc trước, trong hôm nay"),
    Step("press", "🕶 Giữ ẩn danh"),
    Step("press", "✅ Gửi tin báo"),  # the code and PIN, then the offer of area alerts
)
ECHO_FLOW = tuple(
    Step(step.kind, step.value if step.kind == "text" else "↩ Again", ends_with="any")
    for step in TIP_FLOW
)


@dataclass(frozen=True)
class Profile:
    """A bot under test and how a citizen talks to it."""

    name: str
    token: str
    flow: tuple[Step, ...]
    first_user_id: int
    expect_code: bool  # the last answer of a flow carries a tip code


ECHO = Profile("echo bot", ECHO_TOKEN, ECHO_FLOW, 900_000_000, expect_code=False)
TIPLINE = Profile("tipline", TIPLINE_TOKEN, TIP_FLOW, 901_000_000, expect_code=True)


@dataclass(frozen=True)
class Options:
    """Command line options."""

    citizens: int
    flows_per_citizen: int
    warmup_flows: int
    step_timeout: float
    phase_timeout: float


# --- the fake server and what each chat is waiting for -------------------------------------


class ChatWatch:
    """The answer a citizen is waiting for in its chat, filled in by the server's handler."""

    __slots__ = (
        "done",
        "done_at",
        "ends_with",
        "first_reply_at",
        "keyboard_message",
        "strays",
        "texts",
    )

    def __init__(self) -> None:
        self.done: asyncio.Future[None] | None = None
        self.ends_with: EndsWith = "any"
        self.first_reply_at: float | None = None
        self.done_at = 0.0
        self.texts: list[str] = []
        self.keyboard_message: JSONDict | None = None
        self.strays = 0  # messages after an answer was complete: the step's ends_with is off

    def arm(self, ends_with: EndsWith) -> asyncio.Future[None]:
        """Start waiting for the answer to the update about to be injected."""
        self.done = asyncio.get_running_loop().create_future()
        self.ends_with = ends_with
        self.first_reply_at = None
        self.texts = []
        return self.done

    def on_message(self, message: JSONDict, params: JSONDict, now: float) -> None:
        """A sendMessage or editMessageText to this chat succeeded."""
        done = self.done
        if done is None or done.done():
            self.strays += 1
            return
        if self.first_reply_at is None:
            self.first_reply_at = now
        self.texts.append(str(message.get("text", "")))
        if inline_buttons(message):
            self.keyboard_message = message
        markup = params.get("reply_markup")
        kinds = set(markup) if isinstance(markup, dict) else set()
        wanted = {"inline": "inline_keyboard", "keyboard": "keyboard"}.get(self.ends_with)
        if wanted is None or wanted in kinds:
            self.done_at = now
            done.set_result(None)


class BenchServer(FakeTelegramServer):
    """The fake Bot API (strict: Telegram's checks cost it little at this load), telling each
    watched chat about its new messages as they are sent."""

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
    tips_in_db: int | None = None
    warmup_flows: int = 0
    unanswered_submits: int = 0  # last-step presses never answered: a tip may exist or not
    api_calls: int = 0  # Bot API calls other than getUpdates, while measuring
    polls: int = 0  # getUpdates calls that returned updates, while measuring
    strays: int = 0  # messages that came after the answer was complete (0 unless misconfigured)
    log_warnings: int = 0  # WARNING lines in the bot's own output

    def fail(self, detail: str, *, timeout: bool = False, count: int = 1) -> None:
        """Count errors (or timeouts) and keep a few examples."""
        if timeout:
            self.timeouts += count
        else:
            self.errors += count
        if len(self.error_samples) < 5:
            self.error_samples.append(detail)


def _press_data(message: JSONDict | None, label: str) -> str | None:
    for button in inline_buttons(message or {}):
        if button.get("text") == label and isinstance(button.get("callback_data"), str):
            return str(button["callback_data"])
    return None


async def citizen(
    server: BenchServer,
    profile: Profile,
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
            answered = watch.arm(step.ends_with)
            injected_at = time.perf_counter()
            server.inject_update(profile.token, update)
            stats.injected += 1
            last = index == len(profile.flow) - 1
            stats.unanswered_submits += last
            try:
                await asyncio.wait_for(answered, step_timeout)
            except TimeoutError:
                stats.fail(f"user {user_id} step {index + 1}: no answer", timeout=True)
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
    server: BenchServer,
    profile: Profile,
    user_ids: Sequence[int],
    flows: int,
    options: Options,
) -> PhaseStats:
    """Run the citizens concurrently, bounded by the phase timeout."""
    stats = PhaseStats()
    tasks = [
        asyncio.create_task(
            citizen(
                server, profile, uid, flows=flows, stats=stats, step_timeout=options.step_timeout
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
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TIPLINE_", "ECHO_BOT_"))
    }


def echo_command(server: BenchServer) -> tuple[list[str], dict[str, str]]:
    """How to start the echo bot."""
    env = _clean_env() | {"ECHO_BOT_TOKEN": ECHO_TOKEN, "ECHO_BOT_API_URL": server.base_url}
    return [sys.executable, str(BENCH_DIR / "echo_bot.py")], env


def tipline_command(server: BenchServer, data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """How to start `tipline run` on a fresh data folder."""
    script = Path(sys.executable).with_name("tipline")
    argv = [str(script), "run"] if script.exists() else [sys.executable, "-m", "bot.cli", "run"]
    env = _clean_env() | {
        "TIPLINE_TELEGRAM_TOKEN": TIPLINE_TOKEN,
        "TIPLINE_TELEGRAM_API_URL": server.base_url,
        "TIPLINE_TELEGRAM_FILE_URL": server.base_file_url,
        "TIPLINE_DATA_DIR": str(data_dir),
        "TIPLINE_WEB_ENABLED": "false",
        "TIPLINE_SECRET_KEY": SECRET_KEY,
        "TIPLINE_TIPS_PER_HOUR": "10000",
        "TIPLINE_FLOOD_MESSAGES": "100000",
        "TIPLINE_LOG_LEVEL": "WARNING",
    }
    return argv, env


async def _wait_until_polling(
    server: BenchServer, process: asyncio.subprocess.Process, token: str
) -> bool:
    """True once the bot has called getUpdates; False if it exited or took too long."""
    polled = asyncio.ensure_future(
        server.wait_for_call("getUpdates", token=token, max_wait=START_TIMEOUT)
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


async def run_phase(
    server: BenchServer,
    profile: Profile,
    command: tuple[list[str], dict[str, str]],
    workdir: Path,
    options: Options,
) -> PhaseStats:
    """Start the bot, wait for polling, warm up, measure, stop it."""
    log_path = workdir / f"{profile.token.split(':')[0]}.log"
    argv, env = command
    with _open_log(log_path) as log:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    stats = PhaseStats()
    warm_ids: list[int] = []
    ids: list[int] = []
    try:
        if not await _wait_until_polling(server, process, profile.token):
            stats.fail(f"no getUpdates within {START_TIMEOUT:g}s: {_log_tail(log_path, 5)}")
            return stats
        warm_ids = [
            profile.first_user_id + WARMUP_USER_OFFSET + i for i in range(options.warmup_flows)
        ]
        warm = await crowd(server, profile, warm_ids, 1, options)
        ids = [profile.first_user_id + i for i in range(options.citizens)]
        before = (_cpu_seconds(process.pid), time.process_time(), _machine_busy_seconds())
        first_call = len(server.calls)
        stats = await crowd(server, profile, ids, options.flows_per_citizen, options)
        stats.bot_cpu = _cpu_seconds(process.pid) - before[0]
        stats.bench_cpu = time.process_time() - before[1]
        machine = _machine_busy_seconds() - before[2]
        stats.other_cpu = max(0.0, machine - stats.bot_cpu - stats.bench_cpu)
        for record in server.calls[first_call:]:
            if record["token"] != profile.token:
                continue
            if record["method"] != "getUpdates":
                stats.api_calls += 1
            elif record["result"]:
                stats.polls += 1
        stats.warmup_flows = warm.flows
        stats.unanswered_submits += warm.unanswered_submits
        if warm.error_samples:
            failed = warm.errors + warm.timeouts
            stats.fail(f"warm-up: {failed} failed, e.g. {warm.error_samples[0]}", count=failed)
    finally:
        await _stop(process)
    stats.strays = sum(
        watch.strays for uid in (*warm_ids, *ids) if (watch := server.watches.get(uid)) is not None
    )
    if process.returncode not in (0, -signal.SIGTERM):
        stats.error_samples.insert(0, f"bot exited with {process.returncode}")
        stats.errors += 1
    _scan_log(log_path, stats)
    return stats


def count_tips(data_dir: Path) -> int | None:
    """Rows in the tips table of the SQLite file tipline left behind."""
    path = data_dir / "tipline.sqlite3"
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT COUNT(*) FROM tips").fetchone()
    return int(row[0])


async def run(options: Options) -> tuple[PhaseStats, PhaseStats]:
    """Both phases against one server."""
    server = BenchServer()
    await server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="tipline-bench-") as tmp:
            workdir = Path(tmp)
            echo = await run_phase(server, ECHO, echo_command(server), workdir, options)
            data_dir = workdir / "data"
            tip_command = tipline_command(server, data_dir)
            tipline = await run_phase(server, TIPLINE, tip_command, workdir, options)
            tipline.tips_in_db = count_tips(data_dir)
    finally:
        await server.stop()
    return echo, tipline


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


def report(options: Options, echo: PhaseStats, tipline: PhaseStats) -> int:
    """Print the side-by-side table; 0 when the tipline side was fully correct."""
    print(
        f"Python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"{os.cpu_count()} cores; {options.citizens} concurrent citizens x "
        f"{options.flows_per_citizen} flows x {len(TIP_FLOW)} updates "
        f"(+{options.warmup_flows} warm-up flows per bot)"
    )
    rows: list[tuple[str, str, str]] = []

    def row(label: str, fmt: str, pick: Any) -> None:
        rows.append((label, format(pick(echo), fmt), format(pick(tipline), fmt)))

    row("updates/s", ".1f", lambda s: _rate(s.updates, s.elapsed))
    row("completed flows/s", ".2f", lambda s: _rate(s.flows, s.elapsed))
    row("reply latency p50 (ms)", ".1f", lambda s: 1000 * percentile(s.reply_latencies, 0.5))
    row("reply latency p95 (ms)", ".1f", lambda s: 1000 * percentile(s.reply_latencies, 0.95))
    row("total updates (answered)", "d", lambda s: s.updates)
    row("completed flows", "d", lambda s: s.flows)
    row("errors / timeouts", "s", lambda s: f"{s.errors} / {s.timeouts}")
    row("messages after a complete answer", "d", lambda s: s.strays)
    row("warnings in the bot's log", "d", lambda s: s.log_warnings)
    row("elapsed (s)", ".2f", lambda s: s.elapsed)
    row("Bot API calls per update", ".2f", lambda s: _rate(s.api_calls, s.updates))
    row("updates per getUpdates batch", ".1f", lambda s: _rate(s.updates, s.polls))
    row("bot process CPU (% of a core)", ".0f", lambda s: 100 * _rate(s.bot_cpu, s.elapsed))
    row("server+driver CPU (% of a core)", ".0f", lambda s: 100 * _rate(s.bench_cpu, s.elapsed))
    row("other processes CPU (% of a core)", ".0f", lambda s: 100 * _rate(s.other_cpu, s.elapsed))
    width = max(len(label) for label, _, _ in rows)
    print(f"{'':<{width}}  {ECHO.name:>12}  {TIPLINE.name:>12}")
    for label, left, right in rows:
        print(f"{label:<{width}}  {left:>12}  {right:>12}")
    print(f"per-step completion p50 (ms), steps 1-{len(TIP_FLOW)}:")
    for name, stats in ((ECHO.name, echo), (TIPLINE.name, tipline)):
        steps = [
            f"{1000 * percentile(stats.step_latencies.get(i, []), 0.5):.0f}"
            for i in range(len(TIP_FLOW))
        ]
        print(f"  {name:<10} {' '.join(f'{s:>6}' for s in steps)}")
    ratio = _rate(_rate(tipline.updates, tipline.elapsed), _rate(echo.updates, echo.elapsed))
    verdict = "stretch goal met" if ratio >= 0.8 else "goal met" if ratio >= 0.5 else "below goal"
    print(f"ratio tipline/echo updates/s: {ratio:.2f}  (goal >= 0.5, stretch 0.8: {verdict})")
    expected = tipline.flows + tipline.warmup_flows
    extra = tipline.unanswered_submits
    tips_ok = tipline.tips_in_db is not None and expected <= tipline.tips_in_db <= expected + extra
    maybe = f" (+ up to {extra} unanswered submits)" if extra else ""
    print(
        f"tipline correctness: {tipline.flows} measured flows ended with a tip code; tips in "
        f"database {tipline.tips_in_db}, expected {expected} incl. {tipline.warmup_flows} "
        f"warm-up{maybe}: {'OK' if tips_ok else 'MISMATCH'}"
    )
    for name, stats in ((ECHO.name, echo), (TIPLINE.name, tipline)):
        for sample in stats.error_samples:
            print(f"  {name} error: {sample}")
    problems = sum(s.errors + s.timeouts + s.strays for s in (echo, tipline))
    clean = tips_ok and problems == 0
    return 0 if clean else 1


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else "",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--citizens", type=int, default=200, help="concurrent citizens")
    parser.add_argument(
        "--flows-per-citizen",
        type=int,
        default=2,
        help=f"flows each citizen runs ({len(TIP_FLOW)} updates each)",
    )
    parser.add_argument(
        "--warmup-flows", type=int, default=20, help="warm-up flows per bot, each on its own chat"
    )
    parser.add_argument(
        "--step-timeout", type=float, default=15.0, help="seconds to wait for one answer"
    )
    parser.add_argument(
        "--phase-timeout", type=float, default=90.0, help="seconds one measured phase may take"
    )
    args = parser.parse_args(argv)
    if args.citizens < 1 or args.flows_per_citizen < 1:
        parser.error("--citizens and --flows-per-citizen must be at least 1")
    return Options(
        citizens=args.citizens,
        flows_per_citizen=args.flows_per_citizen,
        warmup_flows=max(0, args.warmup_flows),
        step_timeout=args.step_timeout,
        phase_timeout=args.phase_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    options = parse_args(argv)
    echo, tipline = asyncio.run(run(options))
    return report(options, echo, tipline)


if __name__ == "__main__":
    sys.exit(main())
