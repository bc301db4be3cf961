"""Staff reports: /stats (figures and a chart), /export (CSV and XLSX), /audit (admins).

Every command and button asks `access_of` when it runs; an officer's figures and exports
cover only their jurisdiction. Exports hold what officers see of a tip, never anything of
the tipster (no contact details, no link to their chat).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context, Translator
from handlers.routing import Command, FlowControl, Router, unknown_command
from handlers.staff import Access, access_of, is_admin, jurisdiction, refuse_button
from handlers.types import OutgoingFile
from storage.area_catalog import AreaCatalog, fold
from storage.models import AuditEntry
from storage.repositories import audit, reports

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
AUDIT_PAGE = 20
EXPORT_MAX = 50_000  # a chat file stays well under Telegram's 50 MB; the CLI has no cap
AREAS_OFFERED = 8
_DATE_LIKE = re.compile(r"^\d[\d/.\-]*\d$")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")
# Typed period words, folded; "nam" alone is also a place-name word, so only "nam nay".
_PERIOD_WORDS = {
    ("week",): "week", ("tuan",): "week", ("tuan", "nay"): "week", ("this", "week"): "week",
    ("month",): "month", ("thang",): "month", ("thang", "nay"): "month",
    ("this", "month"): "month",
    ("year",): "year", ("nam", "nay"): "year", ("this", "year"): "year",
}  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Cell = str | float | int | datetime | None


@dataclass(frozen=True)
class Words:
    """Messages in one language, for text and files made outside a chat (the CLI) too."""

    translate: Translator
    language: str

    def __call__(self, key: str, /, **params: object) -> str:
        """The message for a key."""
        return self.translate(self.language, key, **params)

    def has(self, key: str) -> bool:
        """Whether a key exists."""
        return self.translate.has(key)


def words_of(ctx: Context) -> Words:
    """The chat's language."""
    return Words(ctx.services.translate, ctx.chat.language)


# --- periods --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole local days in Vietnam, first to last inclusive."""

    first: date
    last: date

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC."""
        start = datetime.combine(self.first, datetime.min.time(), VIETNAM)
        end = datetime.combine(self.last + timedelta(days=1), datetime.min.time(), VIETNAM)
        return start.astimezone(UTC), end.astimezone(UTC)

    @property
    def token(self) -> str:
        """A compact form for button actions and file names."""
        return f"{self.first:%Y%m%d}-{self.last:%Y%m%d}"

    @property
    def label(self) -> str:
        """As people write dates in Vietnam."""
        if self.first == self.last:
            return f"{self.first:%d/%m/%Y}"
        return f"{self.first:%d/%m/%Y} – {self.last:%d/%m/%Y}"

    def scope(self, areas: Sequence[str] | None) -> reports.Scope:
        """The repository's scope for these days and areas."""
        start, end = self.bounds()
        return reports.Scope(start, end, areas)


def named_period(name: str, today: date) -> Period | None:
    """This week (from Monday), month or year, to its last day."""
    if name == "week":
        monday = today - timedelta(days=today.weekday())
        return Period(monday, monday + timedelta(days=6))
    if name == "month":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(first, following - timedelta(days=1))
    if name == "year":
        return Period(today.replace(month=1, day=1), today.replace(month=12, day=31))
    return None


def parse_date(text: str) -> date | None:
    """A typed date: 2026-11-30 or 30/11/2026 (also 30-11-2026, 30.11.2026)."""
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def period_from_token(token: str, today: date) -> Period | None:
    """A period as a button carries it: a name, or 'YYYYMMDD-YYYYMMDD'."""
    named = named_period(token, today)
    if named is not None:
        return named
    first, _, last = token.partition("-")
    try:
        start = datetime.strptime(first, "%Y%m%d").date()
        end = datetime.strptime(last, "%Y%m%d").date()
    except ValueError:
        return None
    return Period(start, end) if start <= end else None


@dataclass(frozen=True)
class Request:
    """What was typed after /stats or /export."""

    period: Period | None = None
    area_text: str = ""
    bad_date: str | None = None
    reversed_dates: bool = False


def read_request(text: str, today: date) -> Request:
    """Dates or a period word first, then an area's name or code."""
    words = text.split()
    dates = [word for word in words if _DATE_LIKE.match(word)]
    rest = [word for word in words if not _DATE_LIKE.match(word)]
    if dates:
        parsed = [parse_date(word) for word in dates[:2]]
        for word, day in zip(dates, parsed, strict=False):
            if day is None:
                return Request(bad_date=word)
        if len(dates) > 2:
            return Request(bad_date=dates[2])
        first, last = parsed[0], parsed[-1]
        assert first is not None and last is not None
        if last < first:
            return Request(reversed_dates=True)
        return Request(Period(first, last), " ".join(rest))
    folded = [fold(word) for word in rest]
    for size in (2, 1):
        name = _PERIOD_WORDS.get(tuple(folded[:size]))
        if name is not None and len(folded) >= size:
            return Request(named_period(name, today), " ".join(rest[size:]))
    return Request(None, " ".join(rest))


def today_in_vietnam(now: datetime) -> date:
    """The local date."""
    return now.astimezone(VIETNAM).date()


# --- /stats and /export ----------------------------------------------------------------------


async def show_stats(ctx: Context, core: FlowControl) -> None:
    """/stats [period] [area]: the figures for a period, with a chart (staff only)."""
    await _command(ctx, core, "stats")


async def export_tips(ctx: Context, core: FlowControl) -> None:
    """/export [period] [area]: the period's tips as CSV and XLSX files (staff only)."""
    await _command(ctx, core, "export")


async def _command(ctx: Context, core: FlowControl, kind: str) -> None:
    access = await access_of(ctx)
    if access is None:
        await unknown_command(ctx, core)
        return
    request = read_request(ctx.event.argument, today_in_vietnam(ctx.now))
    if request.bad_date is not None:
        ctx.say(ctx.t("reports.bad_date", text=request.bad_date[:40]))
        await core.reprompt(ctx)
        return
    if request.reversed_dates:
        ctx.say(ctx.t("reports.dates_reversed"))
        await core.reprompt(ctx)
        return
    period_token = request.period.token if request.period else ""
    area: str | None = None
    if request.area_text:
        found = _areas_for(ctx, access, request.area_text)
        if not found:
            ctx.say(ctx.t("reports.unknown_area", text=request.area_text[:80]))
            await core.reprompt(ctx)
            return
        if len(found) > 1:
            rows = [
                [(ctx.areas.label(a), f"rep:{kind}:{period_token}:{a.code}")]
                for a in found[:AREAS_OFFERED]
            ]
            ctx.ask(ctx.t("reports.choose_area"), rows)
            return
        area = found[0].code
    if request.period is None:
        _ask_period(ctx, kind, area)
        return
    await _run(ctx, access, kind, request.period, area)
    await core.reprompt(ctx)


def _areas_for(ctx: Context, access: Access, text: str) -> list[Any]:
    """Areas a typed name or code means, among those the writer may report on."""
    direct = ctx.areas.get(text.strip().upper())
    candidates = [direct] if direct is not None else ctx.areas.search(text, limit=16)
    found = [a for a in candidates if _scope_areas(ctx, access, a.code) != frozenset()]
    exact = [a for a in found if ctx.areas.is_exact(a, text)]
    return exact[:1] if len(exact) == 1 else found


def _scope_areas(ctx: Context, access: Access, area: str | None) -> frozenset[str] | None:
    """The areas a report covers: the chosen one within the jurisdiction (None: every area)."""
    if area is None:
        return access.areas
    chosen = jurisdiction(ctx, [area])
    return chosen if access.areas is None else chosen & access.areas


def _ask_period(ctx: Context, kind: str, area: str | None) -> None:
    where = f":{area}" if area else ":"
    rows = [
        [(ctx.t(f"reports.this_{name}"), f"rep:{kind}:{name}{where}")]
        for name in ("week", "month", "year")
    ]
    ctx.ask(ctx.t(f"reports.ask_period_{kind}"), rows)


async def press(ctx: Context, action: str, core: FlowControl) -> None:
    """A report button (a period, an area, an audit page), authorised again when pressed."""
    access = await access_of(ctx)
    if access is None:
        await refuse_button(ctx, core)
        return
    _, kind, value, area = [*action.split(":", 3), "", "", ""][:4]
    if kind == "audit":
        if not access.is_admin or not value.isdigit():
            await refuse_button(ctx, core)
            return
        await _audit_page(ctx, int(value))
        return
    if kind not in ("stats", "export"):
        await refuse_button(ctx, core)
        return
    if area and ctx.areas.get(area) is None:
        await refuse_button(ctx, core)
        return
    period = period_from_token(value, today_in_vietnam(ctx.now)) if value else None
    if period is None:
        _ask_period(ctx, kind, area or None)
        return
    await _run(ctx, access, kind, period, area or None)
    await core.reprompt(ctx)


async def _run(ctx: Context, access: Access, kind: str, period: Period, area: str | None) -> None:
    """Audit the request now; read and send after the event's commit, off the write lock."""
    areas = _scope_areas(ctx, access, area)
    if areas is not None and not areas:
        ctx.say(ctx.t("reports.not_your_area"))
        return
    scope = period.scope(sorted(areas) if areas is not None else None)
    where = _area_name(ctx.areas, area) if area else ctx.t("reports.every_area")
    if access.areas is not None and area is None:
        where = ctx.t("reports.your_areas")
    detail: dict[str, Any] = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if area:
        detail["area"] = area
    if kind == "stats":
        await audit.record(
            ctx.session, actor=access.actor, action="stats", detail=detail, at=ctx.now
        )
        ctx.read_after_commit(lambda session: _send_stats(ctx, session, scope, period, where))
    else:
        ctx.read_after_commit(
            lambda session: _send_export(
                ctx,
                session,
                actor=access.actor,
                scope=scope,
                period=period,
                where=where,
                detail=detail,
            )
        )


def _area_name(catalog: AreaCatalog, code: str | None) -> str:
    area = catalog.get(code or "")
    return catalog.label(area) if area else (code or "—")


def category_name(t: Words, category: str) -> str:
    """A category's name (a custom one as configured)."""
    key = f"category.{category}"
    return t(key) if t.has(key) else category


def duration_text(t: Words, value: timedelta | None) -> str:
    """'2 d 3 h', '3 h 20 min', '12 min', or a dash when there is nothing to measure."""
    if value is None:
        return t("reports.no_duration")
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return t("reports.days_hours", d=days, h=hours)
    if hours:
        return t("reports.hours_minutes", h=hours, m=minutes)
    return t("reports.minutes", m=minutes)


def stats_text(t: Words, catalog: AreaCatalog, figures: reports.Figures, heading: str) -> str:
    """The figures as one message."""

    def lines(counts: Sequence[tuple[str, int]]) -> str:
        return "\n".join(f"• {name}: {count}" for name, count in counts) or "• —"

    categories = sorted(figures.by_category.items(), key=lambda item: (-item[1], item[0]))
    statuses = sorted(figures.by_status.items(), key=lambda item: (-item[1], item[0]))
    outreach = figures.outreach
    return t(
        "reports.stats",
        heading=heading,
        total=figures.total,
        categories=lines([(category_name(t, c), n) for c, n in categories]),
        statuses=lines([(t(f"status.{s}"), n) for s, n in statuses]),
        areas=lines([(_area_name(catalog, code), n) for code, n in figures.by_area]),
        first_response=duration_text(t, figures.first_response),
        to_close=duration_text(t, figures.to_close),
        runs=outreach.runs,
        alerts=outreach.alerts,
        bulletins=outreach.bulletins,
        delivered=outreach.delivered,
        residents=outreach.residents,
        groups=outreach.groups,
    )


async def _send_stats(
    ctx: Context, session: AsyncSession, scope: reports.Scope, period: Period, where: str
) -> None:
    """The figures and the chart (read after the event's commit)."""
    figures = await reports.figures(session, scope)
    heading = ctx.t("reports.heading", period=period.label, where=where)
    ctx.say(stats_text(words_of(ctx), ctx.areas, figures, heading))
    names = {c: category_name(words_of(ctx), c) for c in figures.by_category}
    png = await asyncio.to_thread(
        render_chart,
        figures.per_day,
        period,
        names,
        ctx.t("reports.chart_title", period=period.label),
        ctx.t("reports.chart_axis"),
    )
    ctx.send_file(heading, OutgoingFile("tipline-stats.png", png, "image/png"))


def render_chart(
    per_day: dict[str, dict[str, int]],
    period: Period,
    names: dict[str, str],
    title: str,
    axis: str,
) -> bytes:
    """Tips per day stacked by category, as a PNG (no display, no pyplot state)."""
    # Imported here: matplotlib costs tens of MB, and only /stats needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    days = [period.first + timedelta(days=n) for n in range((period.last - period.first).days + 1)]
    keys = [d.isoformat() for d in days]
    totals: dict[str, int] = {}
    for counts in per_day.values():
        for category, count in counts.items():
            totals[category] = totals.get(category, 0) + count
    figure = Figure(figsize=(9, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for category in sorted(totals, key=lambda c: -totals[c]):
        heights = [per_day.get(key, {}).get(category, 0) for key in keys]
        axes.bar(positions, heights, bottom=bottom, width=0.9, label=names.get(category, category))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set_title(title)
    axes.set_ylabel(axis)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    step = max(1, len(days) // 12)
    axes.set_xticks(positions[::step], [f"{d:%d/%m}" for d in days[::step]])
    if totals:
        axes.legend(fontsize="small", loc="upper left")
    axes.set_xlim(-0.5, len(days) - 0.5)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


async def _send_export(
    ctx: Context,
    session: AsyncSession,
    *,
    actor: str,
    scope: reports.Scope,
    period: Period,
    where: str,
    detail: dict[str, Any],
) -> None:
    """The CSV and XLSX files (read after the event's commit), each export audited."""
    rows = await session.execute(reports.export_query(scope).limit(EXPORT_MAX + 1))
    found = list(rows)
    if len(found) > EXPORT_MAX:
        ctx.say(ctx.t("reports.export_too_large", max=EXPORT_MAX))
        return
    labels = await reports.staff_labels(session, [row.owner for row in found])
    table = export_table(words_of(ctx), ctx.areas, found, labels)
    csv_data = to_csv(table)
    xlsx_data = await asyncio.to_thread(to_xlsx, table, ctx.t("reports.sheet"))
    async with ctx.services.sessions() as writing, writing.begin():
        for kind in ("csv", "xlsx"):
            await audit.record(
                writing,
                actor=actor,
                action="export",
                detail={**detail, "format": kind, "count": len(found)},
                at=ctx.now,
            )
    caption = ctx.t("reports.export_caption", period=period.label, where=where, count=len(found))
    name = f"tipline-tips-{period.token}"
    ctx.send_file(caption, OutgoingFile(f"{name}.csv", csv_data, "text/csv"))
    ctx.send_file(
        caption,
        OutgoingFile(
            f"{name}.xlsx",
            xlsx_data,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    )


# --- export files (shared with `tipline export`) ---------------------------------------------

EXPORT_HEADERS = (
    "code", "received", "category", "area_code", "area", "place", "latitude", "longitude",
    "occurred", "description", "status", "priority", "officer", "first_response", "closed",
    "duplicate_of", "reward",
)  # fmt: skip


def _local(value: datetime | None) -> datetime | None:
    return value.astimezone(VIETNAM).replace(tzinfo=None, microsecond=0) if value else None


def export_table(
    t: Words, catalog: AreaCatalog, rows: Sequence[Any], labels: dict[str, str]
) -> list[list[Cell]]:
    """A header row and one row per tip; times in Vietnam; nothing of the tipster."""
    table: list[list[Cell]] = [[t(f"reports.col_{name}") for name in EXPORT_HEADERS]]
    for row in rows:
        occurred_key = f"when.{row.occurred}"
        table.append(
            [
                row.code,
                _local(row.created_at),
                category_name(t, row.category),
                row.area_code,
                _area_name(catalog, row.area_code) if row.area_code else None,
                row.place_text,
                row.latitude,
                row.longitude,
                t(occurred_key) if t.has(occurred_key) else row.occurred,
                row.description,
                t(f"status.{row.status}"),
                t(f"reports.priority_{row.priority}"),
                labels.get(row.owner or "", t("reports.unknown_officer")) if row.owner else None,
                _local(row.first_response_at),
                _local(row.closed_at),
                row.duplicate_of,
                t("reports.yes") if row.reward_at else t("reports.no"),
            ]
        )
    return table


def safe_cell(value: str) -> str:
    """Text a spreadsheet will not run as a formula."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, str):
        return safe_cell(value)
    return str(value)


def to_csv(table: list[list[Cell]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel reads Vietnamese correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in table:
        writer.writerow([_text(cell) for cell in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(table: list[list[Cell]], sheet: str) -> bytes:
    """A write-only workbook of the table; text guarded against formulas."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    page = book.create_sheet(sheet[:31])
    for row in table:
        page.append(
            [safe_cell(ILLEGAL_CHARACTERS_RE.sub("", c)) if isinstance(c, str) else c for c in row]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- /audit --------------------------------------------------------------------------------


async def show_audit(ctx: Context, core: FlowControl) -> None:
    """/audit: the latest audit entries, newest first, with Older/Newer (admins only)."""
    if not await is_admin(ctx):
        await unknown_command(ctx, core)
        return
    await _audit_page(ctx, 0)


def actor_name(t: Words, actor: str, labels: dict[str, str]) -> str:
    """Who did it: a staff member's label, the command line, a configured admin or the system."""
    if actor in labels:
        return labels[actor]
    if actor.startswith("bootstrap:"):
        return t("reports.actor_bootstrap")
    return actor


def audit_line(t: Words, entry: AuditEntry, labels: dict[str, str]) -> str:
    """One entry: when (Vietnam time), who, what, on what."""
    when = entry.at.astimezone(VIETNAM)
    return t(
        "reports.audit_line",
        at=f"{when:%d/%m/%Y %H:%M}",
        actor=actor_name(t, entry.actor, labels),
        action=entry.action,
        target=entry.target or "—",
    )


async def _audit_page(ctx: Context, offset: int) -> None:
    """A page of the audit log (a short read by primary key, in the event's session)."""
    entries = await reports.audit_page(ctx.session, offset=offset, limit=AUDIT_PAGE)
    shown = entries[:AUDIT_PAGE]
    labels = await reports.staff_labels(ctx.session, [e.actor for e in shown])
    lines = "\n".join(audit_line(words_of(ctx), entry, labels) for entry in shown)
    text = ctx.t("reports.audit", lines=lines) if shown else ctx.t("reports.audit_empty")
    nav = []
    if len(entries) > AUDIT_PAGE:
        nav.append((ctx.t("reports.older"), f"rep:audit:{offset + AUDIT_PAGE}"))
    if offset:
        nav.append((ctx.t("reports.newer"), f"rep:audit:{max(0, offset - AUDIT_PAGE)}"))
    ctx.ask(text, [nav] if nav else [])


ROUTER = Router(
    "reports",
    commands=(
        Command("stats", show_stats, listed=False),
        Command("export", export_tips, listed=False),
        Command("audit", show_audit, listed=False),
    ),
    prefixes=("rep:",),
    on_button=press,
)
