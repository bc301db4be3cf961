"""The area picker every flow uses: type a name, share a location, or browse the tree.

Its state lives in the host flow's draft under "picker"; the host calls `ask` to show it and
`handle` with each event, which returns the chosen area code once the user has picked one.
"""

from __future__ import annotations

from typing import Any

from handlers.context import Context
from storage.area_catalog import Area, AreaKind

PAGE_SIZE = 8
LABEL_MAX = 60
Rows = list[list[tuple[str, str]]]


def _state(ctx: Context) -> dict[str, Any]:
    return dict(ctx.draft.get("picker") or {})


def _save(ctx: Context, **values: Any) -> None:
    ctx.update_draft(picker={**_state(ctx), **values})


def reset(ctx: Context) -> None:
    """Start picking afresh: the type-a-name prompt."""
    ctx.update_draft(picker={"view": "ask"})


def _label(ctx: Context, area: Area) -> str:
    label = ctx.areas.label(area)
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def _paged(ctx: Context, codes: list[str], page: int) -> tuple[Rows, int]:
    """Buttons for one page of areas, with previous/next when needed; the clamped page."""
    pages = max(1, -(-len(codes) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    rows: Rows = []
    for code in codes[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]:
        area = ctx.areas.get(code)
        if area is not None:
            rows.append([(_label(ctx, area), f"pick:area:{code}")])
    nav = []
    if page > 0:
        nav.append((ctx.t("picker.previous"), f"pick:page:{page - 1}"))
    if page < pages - 1:
        nav.append((ctx.t("picker.next"), f"pick:page:{page + 1}"))
    if nav:
        rows.append(nav)
    return rows, page


async def ask(ctx: Context, question: str, extra_rows: Rows) -> None:
    """Show the picker in its current view, with the host's own buttons (e.g. Cancel) last."""
    state = _state(ctx)
    view = state.get("view", "ask")
    page = int(state.get("page", 0))
    if view == "results":
        codes = list(state.get("results", []))
        rows, page = _paged(ctx, codes, page)
        rows.append(
            [(ctx.t("picker.search_again"), "pick:ask"), (ctx.t("picker.browse"), "pick:browse")]
        )
        pages = max(1, -(-len(codes) // PAGE_SIZE))
        text = ctx.t("picker.results", count=len(codes), page=page + 1, pages=pages)
        ctx.ask(text, [*rows, *extra_rows])
    elif view == "browse":
        node = state.get("node")
        codes = [a.code for a in _browse_children(ctx, node)]
        rows, page = _paged(ctx, codes, page)
        top: Rows = []
        parent = ctx.areas.get(node) if node else None
        if parent is not None and parent.kind is not AreaKind.PROVINCE:
            top.append([(ctx.t("picker.whole", name=parent.name), f"pick:area:{parent.code}")])
        back = [(ctx.t("picker.search_again"), "pick:ask")]
        if parent is not None:
            back.append((ctx.t("picker.up"), f"pick:up:{parent.parent or ''}"))
        where = ctx.areas.label(parent) if parent else ctx.t("picker.all_provinces")
        pages = max(1, -(-len(codes) // PAGE_SIZE))
        text = ctx.t("picker.browsing", where=where, page=page + 1, pages=pages)
        ctx.ask(text, [*top, *rows, back, *extra_rows])
    elif view == "locate":
        # Only here the location request: on Telegram it is a keyboard of its own message.
        rows = [[(ctx.t("picker.browse"), "pick:browse")], *extra_rows]
        ctx.ask(ctx.t("picker.ask_location"), rows, request_location=True)
    else:
        rows = [
            [(ctx.t("button.share_location"), "pick:locate")],
            [(ctx.t("picker.browse"), "pick:browse")],
            *extra_rows,
        ]
        ctx.ask(question, rows)


def _browse_children(ctx: Context, node: str | None) -> list[Area]:
    """What browsing shows under a node; with one province, its wards straight away."""
    if node is None:
        provinces = ctx.areas.provinces()
        return ctx.areas.children(provinces[0].code) if len(provinces) == 1 else provinces
    return ctx.areas.children(node)


async def handle(ctx: Context, action: str | None) -> str | None:
    """Take input for the picker; the chosen area's code, or None (the view to re-ask is saved)."""
    event = ctx.event
    if action is not None and action.startswith("pick:"):
        return _handle_action(ctx, action[5:])
    if event.location is not None:
        return _locate(ctx)
    text = (event.text or "").strip()
    if not text or event.attachments or event.unsupported:
        ctx.say(ctx.t("picker.wants_name"))
        return None
    found = ctx.areas.search(text, limit=PAGE_SIZE * 5)
    if not found:
        ctx.say(ctx.t("picker.no_match", query=text[:80]))
        _save(ctx, view="ask", page=0)
        return None
    exact = [area for area in found if ctx.areas.is_exact(area, text)]
    if len(found) == 1 or len(exact) == 1:
        return _chosen(ctx, exact[0] if exact else found[0])
    _save(ctx, view="results", results=[a.code for a in found], page=0)
    return None


def _handle_action(ctx: Context, action: str) -> str | None:
    kind, _, value = action.partition(":")
    if kind == "area":
        area = ctx.areas.get(value)
        if area is None:
            ctx.say(ctx.t("picker.gone"))
            _save(ctx, view="ask", page=0)
            return None
        return _chosen(ctx, area)
    if kind == "page":
        _save(ctx, page=int(value) if value.isdigit() else 0)
    elif kind == "browse":
        _save(ctx, view="browse", node=None, page=0)
    elif kind == "up":
        _save(ctx, view="browse", node=value or None, page=0)
    elif kind == "locate":
        _save(ctx, view="locate", page=0)
    else:
        _save(ctx, view="ask", page=0)
    return None


def _chosen(ctx: Context, area: Area, *, narrow: bool = True) -> str | None:
    """A ward with neighbourhoods opens them (the whole ward stays one tap away)."""
    state = _state(ctx)
    narrowing = state.get("view") == "browse" and state.get("node") == area.code
    if narrow and not narrowing and ctx.areas.children(area.code):
        _save(ctx, view="browse", node=area.code, page=0)
        return None
    ctx.say(ctx.t("picker.chosen", area=ctx.areas.label(area)))
    ctx.update_draft(picker=None)
    return area.code


def _locate(ctx: Context) -> str | None:
    """The area holding or nearest a shared location, within the configured radius."""
    location = ctx.event.location
    assert location is not None
    found = ctx.areas.locate(location.latitude, location.longitude, ctx.limits.area_radius_km)
    if found.area is not None:
        return _chosen(ctx, found.area, narrow=False)
    if found.distance_km is None:
        ctx.say(ctx.t("picker.location_unmapped"))
    else:
        ctx.say(ctx.t("picker.location_far", km=round(found.distance_km)))
    _save(ctx, view="ask", page=0)
    return None
