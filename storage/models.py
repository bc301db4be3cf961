"""Tables. No column holds a platform user id, username, name or phone in plain text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store in UTC."""
        if value is None:
            return None
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with JSON for dicts and lists."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class Chat(Base):
    """A private chat, known only by a keyed hash of its address, and its conversation state."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="vi")
    flow: Mapped[str | None] = mapped_column(String(32), default=None)
    step: Mapped[str | None] = mapped_column(String(32), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_token: Mapped[str | None] = mapped_column(String(8), default=None)
    prompt_actions: Mapped[list[Any]] = mapped_column(default=list)
    expired_notice: Mapped[bool] = mapped_column(default=False)
    blocked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_chats_flow_updated", "flow", "updated_at"),)


class Tip(Base):
    """A tip as officers see it: what, where, when; never who."""

    __tablename__ = "tips"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    place_text: Mapped[str | None] = mapped_column(Text, default=None)
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    description: Mapped[str] = mapped_column(Text)
    occurred: Mapped[str] = mapped_column(String(16))
    contact_enc: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="new")
    # The officer working it: an actor name as the audit log writes it ("staff:12"), or None.
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    duplicate_of: Mapped[str | None] = mapped_column(String(16), default=None)
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    reward_note: Mapped[str | None] = mapped_column(Text, default=None)
    reward_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    attachments: Mapped[list[TipAttachment]] = relationship(
        back_populates="tip", cascade="all, delete-orphan", order_by="TipAttachment.id"
    )

    __table_args__ = (
        Index("ix_tips_status_created", "status", "created_at"),
        Index("ix_tips_created", "created_at"),
        Index("ix_tips_area_created", "area_code", "created_at"),
        Index("ix_tips_category_created", "category", "created_at"),
        Index("ix_tips_owner_status", "owner", "status"),
        Index("ix_tips_category_status_created", "category", "status", "created_at"),
        Index("ix_tips_owner_status_created", "owner", "status", "created_at"),
        Index(
            "ix_tips_created_figures",
            "created_at",
            "category",
            "status",
            "area_code",
            "first_response_at",
            "closed_at",
        ),
    )


class TipAttachment(Base):
    """A file sent with a tip: a platform file reference or a stored, metadata-stripped file."""

    __tablename__ = "tip_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    file_ref: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str | None] = mapped_column(String(128), default=None)
    size: Mapped[int | None] = mapped_column(Integer, default=None)

    tip: Mapped[Tip] = relationship(back_populates="attachments")


class TipOwner(Base):
    """The link from a tip back to its tipster: a keyed hash and an encrypted reply address."""

    __tablename__ = "tip_owners"

    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), primary_key=True)
    owner_hash: Mapped[str] = mapped_column(String(64), index=True)
    reply_address_enc: Mapped[str | None] = mapped_column(Text, default=None)
    # The tipster asked to be told when the tip is received, actioned or closed.
    updates: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_tip_owners_owner_created", "owner_hash", "created_at"),)


class TipEvent(Base):
    """One line of a tip's timeline: a status change, claim, note, reply, answer or more.

    `actor` is an audit name ("staff:12", "tipster", "system"); a tipster's words are kept as
    they wrote them, like the tip's description, and nothing else about them.
    """

    __tablename__ = "tip_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_tip_events_tip", "tip_id", "id"),)


class BlockedTipster(Base):
    """A tipster officers blocked by one of their tip codes: known here only by the keyed hash."""

    __tablename__ = "blocked_tipsters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tip_code: Mapped[str] = mapped_column(String(16))
    blocked_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Neighbourhood(Base):
    """A local area (hamlet, residential group) a deployment added under a ward."""

    __tablename__ = "neighbourhoods"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    ward_code: Mapped[str] = mapped_column(String(16), index=True)
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    polygons: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A chat's alert subscription to one area: reply address encrypted, found by keyed hash."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64))
    address_enc: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(64), index=True)
    topics: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    # A neighbourhood group linked to the area (reports count groups apart from residents).
    is_group: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("address_hash", "area_code", name="uq_subscription_area"),)


class StaffMember(Base):
    """An admin or officer: known by the keyed hash of their chat, reachable through it encrypted.

    Staff are not anonymous, but nothing here is a platform id or name: `label` is what the
    inviter called them.
    """

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    address_enc: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    # An officer's jurisdiction: area codes (a ward includes its neighbourhoods); empty = all.
    areas: Mapped[list[Any]] = mapped_column(default=list)
    label: Mapped[str] = mapped_column(String(64))
    invited_by: Mapped[str] = mapped_column(String(64))
    # New-tip notices to this member's private chat too (/notify), within their areas.
    notify: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Invite(Base):
    """A one-time code that makes its redeemer staff; only its keyed hash is stored."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    areas: Mapped[list[Any]] = mapped_column(default=list)
    label: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    used_by: Mapped[int | None] = mapped_column(default=None)


class MessagePrompt(Base):
    """The buttons of one proactive message (an alert's "stop these alerts"): their own token.

    A chat's flow prompt lives in its chat row; these stay live beside it, so an alert's button
    and the prompt of a tip in progress never retire each other. `address_hash` set: only that
    chat may press them.
    """

    __tablename__ = "message_prompts"

    token: Mapped[str] = mapped_column(String(16), primary_key=True)
    address_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    actions: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class Bulletin(Base):
    """An alert or bulletin an admin made: what, to which areas, about which topic, when."""

    __tablename__ = "bulletins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # alert | bulletin
    text: Mapped[str] = mapped_column(Text)
    # A stored, re-encoded photo sent with the text ("stored:NAME"), if any.
    photo_ref: Mapped[str | None] = mapped_column(Text, default=None)
    target: Mapped[str] = mapped_column(String(64))  # the area chosen, "*" for every area
    # Every area whose subscribers it reaches (the target, what lies in it and above it).
    areas: Mapped[list[Any]] = mapped_column(default=list)  # empty: every area
    topic: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Its last pause: a time that fell inside it is not sent on resume, even within grace.
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    resumed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    creator_address_enc: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BulletinRun(Base):
    """One sending of a bulletin, unique per scheduled time, so a double fire sends once."""

    __tablename__ = "bulletin_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime] = mapped_column()
    # pending (recipients not yet queued), queued, done, missed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Keyset cursor over subscriptions while recipients are being queued.
    cursor: Mapped[int] = mapped_column(default=0)
    prompt_token: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (UniqueConstraint("bulletin_id", "scheduled_for", name="uq_run_schedule"),)


class Delivery(Base):
    """One proactive message in the outbox: to whom (encrypted), what, and what became of it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address_hash: Mapped[str] = mapped_column(String(64))
    address_enc: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # queued, sending, sent, failed, blocked
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(64), default=None)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("bulletin_runs.id", ondelete="CASCADE"), default=None
    )
    is_group: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_outbox_channel_status_next", "channel", "status", "next_attempt_at"),
        Index("ix_outbox_run_status", "run_id", "status"),
        UniqueConstraint("run_id", "address_hash", name="uq_outbox_run_address"),
    )


class WebInboxMessage(Base):
    """A proactive message waiting for a web-chat visitor's page to fetch it (then deleted)."""

    __tablename__ = "web_inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One officer, admin or system action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)
