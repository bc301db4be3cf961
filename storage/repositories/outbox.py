"""The outbox: proactive deliveries, claimed, sent and recorded one by one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, Text, bindparam, cast, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery
from storage.repositories import chats

QUEUED, SENDING, SENT, FAILED, BLOCKED = "queued", "sending", "sent", "failed", "blocked"
# The drainer's statements go to the table, not the ORM: no identity map to keep in step.
_outbox: Table = Delivery.__table__  # type: ignore[assignment]
_c = _outbox.c
_payload_text = cast(_c.payload, Text).label("payload")


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for sending; `attempts` counts this one."""

    id: int
    address_hash: str
    address_enc: str
    payload: str  # as stored (JSON): a run's copies share one text, parsed once by the drainer
    attempts: int
    claimed_until: datetime  # the lease's end, as stored: it names this claim and no other


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else ""


async def enqueue(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Queue deliveries (channel, address_hash, address_enc, payload, run_id, created_at...).

    A row whose run already has a delivery to that address is skipped, so queuing a run's page
    twice (after a crash) queues nobody twice. Returns how many rows were given.
    """
    if not rows:
        return 0
    if _dialect(session) == "sqlite":
        return await _enqueue_sqlite(session, rows)
    if _dialect(session) == "postgresql":
        statement: Any = postgresql.insert(_outbox).on_conflict_do_nothing()
    else:
        statement = insert(_outbox)
    values = [
        {
            "status": QUEUED,
            "attempts": 0,
            "next_attempt_at": row["created_at"],
            "run_id": None,
            "is_group": False,
            "last_error": None,  # every row has every key: one statement for the whole page
            **row,
        }
        for row in rows
    ]
    await session.execute(statement, values)
    return len(values)


_ENCODED = ("payload", "created_at", "next_attempt_at")


async def _enqueue_sqlite(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """`enqueue` on SQLite, each distinct payload and time encoded once rather than once a row.

    A fan-out page's rows share one payload and one time: dumping that JSON and formatting two
    datetimes per row was a third of the fan-out's CPU per recipient. They are encoded by the
    columns' own types and bound as text, so the stored text is what SQLAlchemy stores.
    """
    dialect = session.get_bind().dialect
    processors = {
        name: _c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _ENCODED
    }
    statement = (
        sqlite.insert(_outbox)
        .on_conflict_do_nothing()
        .values({_c[name]: bindparam(f"{name}_text", type_=Text) for name in _ENCODED})
    )
    encoded: dict[tuple[str, int], Any] = {}  # by object: the rows keep every one alive

    def encode(name: str, value: Any) -> Any:
        key = (name, id(value))
        if key not in encoded:
            process = processors[name]
            encoded[key] = value if process is None else process(value)
        return encoded[key]

    values = []
    for row in rows:
        value = {
            "status": QUEUED,
            "attempts": 0,
            "run_id": None,
            "is_group": False,
            "last_error": None,  # every row has every key: one statement for the whole page
            **row,
        }
        value.setdefault("next_attempt_at", row["created_at"])
        for name in _ENCODED:
            value[f"{name}_text"] = encode(name, value.pop(name))
        values.append(value)
    await session.execute(statement, values)
    return len(values)


async def claim(
    session: AsyncSession, channel: str, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    """Take up to `limit` due deliveries of a channel for sending, the longest due first.

    A claimed delivery is `sending` until its lease ends; one whose sender died with it becomes
    due again then (sent at least once; the duplicates are at most the sends in flight), and is
    taken before queued ones. Each status is read in its index's order, so a claim reads only
    the rows it takes however many were sent before. On PostgreSQL rows are claimed with
    FOR UPDATE SKIP LOCKED, so several processes share an outbox.
    """
    rows: list[Any] = []
    until = now + lease
    for status in (SENDING, QUEUED):
        if len(rows) >= limit:
            break
        query = (
            select(_c.id, _c.address_hash, _c.address_enc, _payload_text, _c.attempts)
            .where(_c.channel == channel, _c.status == status, _c.next_attempt_at <= now)
            .order_by(_c.next_attempt_at, _c.id)
            .limit(limit - len(rows))
        )
        if _dialect(session) == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows.extend((await session.execute(query)).all())
    if rows:
        await session.execute(
            update(_outbox)
            .where(_c.id.in_([row.id for row in rows]))
            .values(status=SENDING, next_attempt_at=until, attempts=_c.attempts + 1)
        )
    return [
        Claimed(row.id, row.address_hash, row.address_enc, row.payload, row.attempts + 1, until)
        for row in rows
    ]


async def mark_sent(session: AsyncSession, delivery_id: int, now: datetime) -> None:
    """The platform accepted it."""
    await session.execute(
        update(_outbox)
        .where(_c.id == delivery_id)
        .values(status=SENT, sent_at=now, last_error=None)
    )


async def mark_sent_many(session: AsyncSession, delivery_ids: Sequence[int], now: datetime) -> None:
    """The platform accepted these (one UPDATE for a drainer's batch of successes)."""
    if delivery_ids:
        await session.execute(
            update(_outbox)
            .where(_c.id.in_(delivery_ids))
            .values(status=SENT, sent_at=now, last_error=None)
        )


async def release(
    session: AsyncSession,
    delivery_ids: Sequence[int],
    at: datetime,
    error: str | None = None,
    claimed_until: datetime | None = None,
) -> None:
    """Give claimed, unsent deliveries back, due at `at`; their claim is not counted an attempt.

    For a chat's turn that is not yet due or a flood wait: the message itself did not fail.
    Only rows still `sending` change, so a row another sender finished since stays as it is;
    with `claimed_until`, only rows still under that claim (not claimed again since).
    """
    if not delivery_ids:
        return
    values: dict[str, Any] = {
        "status": QUEUED,
        "next_attempt_at": at,
        "attempts": _c.attempts - 1,  # `sending` rows were claimed: at least 1
    }
    if error is not None:
        values["last_error"] = error[:64]
    statement = update(_outbox).where(_c.id.in_(delivery_ids), _c.status == SENDING)
    if claimed_until is not None:
        statement = statement.where(_c.next_attempt_at == claimed_until)
    await session.execute(statement.values(**values))


async def retry_later(session: AsyncSession, delivery_id: int, at: datetime, error: str) -> None:
    """Try again at a time (a flood wait or a transient failure)."""
    await session.execute(
        update(_outbox)
        .where(_c.id == delivery_id)
        .values(status=QUEUED, next_attempt_at=at, last_error=error[:64])
    )


async def give_up(session: AsyncSession, delivery_id: int, error: str) -> None:
    """Failed for good (too many attempts, or refused)."""
    await session.execute(
        update(_outbox).where(_c.id == delivery_id).values(status=FAILED, last_error=error[:64])
    )


async def mark_blocked(session: AsyncSession, delivery_id: int, address_hash: str) -> None:
    """The chat blocked the bot: this delivery and the chat's other queued ones are not sent."""
    await session.execute(
        update(_outbox)
        .where(
            or_(
                _c.id == delivery_id,
                (_c.address_hash == address_hash) & (_c.status == QUEUED),
            )
        )
        .values(status=BLOCKED, last_error="blocked")
    )
    await chats.mark_unreachable(session, address_hash)


async def next_due(session: AsyncSession, channel: str) -> datetime | None:
    """When a channel's next delivery comes due (or its oldest claim's lease ends), if any."""
    due: datetime | None = await session.scalar(
        select(func.min(_c.next_attempt_at)).where(
            _c.channel == channel, _c.status.in_((QUEUED, SENDING))
        )
    )
    return due


async def counts(session: AsyncSession, run_id: int) -> dict[str, int]:
    """Deliveries of a run by status."""
    rows = await session.execute(
        select(_c.status, func.count()).where(_c.run_id == run_id).group_by(_c.status)
    )
    return {str(status): int(n) for status, n in rows}


async def unsettled(session: AsyncSession, run_id: int) -> bool:
    """Whether some of a run's deliveries are still queued or being sent (one index probe)."""
    found = await session.scalar(
        select(_c.id).where(_c.run_id == run_id, _c.status.in_((QUEUED, SENDING))).limit(1)
    )
    return found is not None


async def reached(session: AsyncSession, run_id: int) -> tuple[int, int]:
    """The residents' chats and the groups a run's messages reached."""
    rows = await session.execute(
        select(_c.is_group, func.count(func.distinct(_c.address_hash)))
        .where(_c.run_id == run_id, _c.status == SENT)
        .group_by(_c.is_group)
    )
    found = {bool(is_group): int(n) for is_group, n in rows}
    return found.get(False, 0), found.get(True, 0)


async def pending(session: AsyncSession, channel: str) -> int:
    """Deliveries of a channel still to be sent (queued or in flight)."""
    count = await session.scalar(
        select(func.count()).where(_c.channel == channel, _c.status.in_((QUEUED, SENDING)))
    )
    return int(count or 0)
