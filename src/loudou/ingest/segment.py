"""Segment HTTP Tracking API payloads: validation and conversion to store rows.

Field names follow Segment (``userId``, ``anonymousId``, ``event``, ``properties``, ``traits``,
``timestamp``, ``messageId``, ``context``), so Segment's client libraries work unchanged.

Each message becomes one event row (except ``alias``): ``track`` keeps its event name, ``page`` is
``page_view``, ``screen`` is ``screen_view``, ``identify`` is ``identify`` (its traits also merge into
the customer), ``group`` is ``group``. ``event_id`` is the ``messageId`` (a random one if absent),
so a retried message is stored once. ``customer_id`` is ``userId``, else ``anonymousId``; the store
resolves anonymous ids linked by ``identify`` / ``alias`` / messages carrying both ids. Context
fields are kept as ``context_*`` properties (``context_ip``, ``context_user_agent``,
``context_page_url``, ``context_campaign_source``, ...); UTM ``source`` and ``name`` become the
event's ``channel`` and ``campaign``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from loudou.store.base import EVENT_SCHEMA

MAX_EVENT_BYTES = 32 * 1024  # Segment's limits
MAX_BATCH_BYTES = 500 * 1024
MAX_FUTURE = timedelta(days=1)  # timestamps further ahead than this are clock errors

Id = Annotated[str, Field(min_length=1, max_length=1024)] | StrictInt
Name = Annotated[str, Field(min_length=1, max_length=255)]
Object = dict[str, Any]


class _Message(BaseModel):
    """Fields every Segment message may carry; unknown fields (integrations, version) are ignored."""

    model_config = ConfigDict(extra="ignore")

    userId: Id | None = None
    anonymousId: Id | None = None
    messageId: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    context: Object | None = None


class Track(_Message):
    type: Literal["track"] = "track"
    event: Name
    properties: Object | None = None


class Page(_Message):
    type: Literal["page"] = "page"
    name: str | None = None
    category: str | None = None
    properties: Object | None = None


class Screen(_Message):
    type: Literal["screen"] = "screen"
    name: str | None = None
    category: str | None = None
    properties: Object | None = None


class Identify(_Message):
    type: Literal["identify"] = "identify"
    traits: Object | None = None


class Group(_Message):
    type: Literal["group"] = "group"
    groupId: Id
    traits: Object | None = None


class Alias(_Message):
    type: Literal["alias"] = "alias"
    previousId: Id


Message = Annotated[Track | Page | Screen | Identify | Group | Alias, Field(discriminator="type")]
MESSAGE_TYPES: dict[str, type[_Message]] = {
    "track": Track,
    "page": Page,
    "screen": Screen,
    "identify": Identify,
    "group": Group,
    "alias": Alias,
}
_MESSAGES = TypeAdapter(list[Message])
_ONE = TypeAdapter(Message)


class Batch(BaseModel):
    """``POST /v1/batch`` body (for the OpenAPI page; the handler validates item by item)."""

    batch: list[Object]
    context: Object | None = None
    sentAt: datetime | None = None


@dataclass(frozen=True)
class Problem:
    """Why one message (or the whole body) was refused; ``field`` is a path such as
    ``batch[3].timestamp``."""

    code: str
    field: str
    message: str
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "field": self.field, "message": self.message}
        if self.index is not None:
            d["index"] = self.index
        return d


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem_from(e: PydanticValidationError, prefix: str, index: int | None) -> Problem:
    first = e.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    # A discriminated union puts the message type in the path ('track'); users never wrote it.
    if loc and loc[0] in MESSAGE_TYPES:
        loc = loc[1:]
    loc = loc[:1]  # fields are flat; deeper parts name union members ('constrained-str')
    kind = first["type"]
    if kind == "union_tag_invalid" or (kind == "union_tag_not_found"):
        loc, text = ("type",), f"must be one of {', '.join(MESSAGE_TYPES)}"
    elif kind == "missing":
        text = "is required"
    else:
        text = first["msg"][0].lower() + first["msg"][1:]
    return Problem("invalid_field", _path(prefix, loc), text, index)


def parse_body(body: bytes) -> Any:
    """JSON from a request body, or a Problem naming the body: empty, not UTF-8, not JSON."""
    if not body.strip():
        return Problem("invalid_json", "body", "is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if "utf-8" in str(e).lower() or "surrogate" in str(e).lower():
            return Problem("invalid_encoding", "body", "is not valid UTF-8")
        return Problem("invalid_json", "body", f"is not valid JSON: {e}")


@dataclass
class Accepted:
    """Valid messages of one request, with their position in it."""

    messages: list[tuple[int, _Message]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def validate_one(data: Any, kind: str, now: datetime) -> Accepted:
    """One message sent to ``/v1/<kind>``; its type comes from the endpoint."""
    if not isinstance(data, dict):
        return Accepted(problems=[Problem("invalid_json", "body", "must be a JSON object")])
    data = {**data, "type": kind}
    try:
        msg = _ONE.validate_python(data)
    except PydanticValidationError as e:
        return Accepted(problems=[_problem_from(e, "", None)])
    problem = check(msg, "", None, now)
    return Accepted(problems=[problem]) if problem else Accepted(messages=[(0, msg)])


def validate_batch(data: Any, body_size: int, now: datetime) -> Accepted:
    """``/v1/batch``: valid messages are kept, invalid ones reported by index."""
    if not isinstance(data, dict):
        return Accepted(problems=[Problem("invalid_json", "body", "must be a JSON object")])
    items = data.get("batch")
    if not isinstance(items, list):
        what = "is required" if items is None else "must be a list of messages"
        return Accepted(problems=[Problem("invalid_field", "batch", what)])
    shared = data.get("context")
    result = Accepted()
    todo: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            result.problems.append(
                Problem("invalid_field", f"batch[{i}]", "must be a JSON object", i)
            )
        elif body_size > MAX_EVENT_BYTES and len(orjson.dumps(item)) > MAX_EVENT_BYTES:
            result.problems.append(
                Problem("payload_too_large", f"batch[{i}]", f"is over {MAX_EVENT_BYTES} bytes", i)
            )
        else:
            if isinstance(shared, dict) and "context" not in item:
                item = {**item, "context": shared}
            todo.append((i, item))
    try:  # fast path: the whole batch at once
        validated = list(zip(todo, _MESSAGES.validate_python([x for _, x in todo]), strict=True))
    except PydanticValidationError:
        validated = []
        for i, item in todo:
            try:
                validated.append(((i, item), _ONE.validate_python(item)))
            except PydanticValidationError as e:
                result.problems.append(_problem_from(e, f"batch[{i}]", i))
    for (i, _), msg in validated:
        problem = check(msg, f"batch[{i}]", i, now)
        if problem:
            result.problems.append(problem)
        else:
            result.messages.append((i, msg))
    result.problems.sort(key=lambda p: p.index or 0)
    return result


def check(msg: _Message, prefix: str, index: int | None, now: datetime) -> Problem | None:
    """Rules pydantic cannot express per field: ids present, time not in the future."""
    where = prefix + "." if prefix else ""
    if isinstance(msg, Alias):
        if msg.userId is None:
            return Problem("missing_id", where + "userId", "is required for alias", index)
    elif msg.userId is None and msg.anonymousId is None:
        return Problem("missing_id", where + "userId", "userId or anonymousId is required", index)
    for name in ("timestamp", "originalTimestamp"):
        value = getattr(msg, name)
        if value is not None and _utc(value) > now + MAX_FUTURE:
            return Problem(
                "timestamp_in_future",
                where + name,
                f"{value.isoformat()} is more than a day ahead of the server clock",
                index,
            )
    return None


def _utc(d: datetime) -> datetime:
    """Aware UTC; naive times are taken as UTC."""
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


def event_time(msg: _Message, received: datetime) -> datetime:
    """Segment's rule: ``timestamp``, else ``originalTimestamp`` corrected for the client's clock
    skew with ``sentAt``, else the time received. Naive UTC."""
    if msg.timestamp is not None:
        t = _utc(msg.timestamp)
    elif msg.originalTimestamp is not None:
        t = _utc(msg.originalTimestamp)
        if msg.sentAt is not None:
            t = received - (_utc(msg.sentAt) - t)
    else:
        t = received
    return t.replace(tzinfo=None)


_CONTEXT_KEYS = (
    ("ip", "context_ip"),
    ("userAgent", "context_user_agent"),
    ("locale", "context_locale"),
    ("timezone", "context_timezone"),
)
_PAGE_KEYS = tuple((k, "context_page_" + k) for k in ("path", "url", "referrer", "title", "search"))
_CAMPAIGN_FIELDS = ("source", "medium", "name", "term", "content")
_UTM = {k: "utm_campaign" if k == "name" else f"utm_{k}" for k in _CAMPAIGN_FIELDS}


def _event_name(msg: _Message) -> str:
    if isinstance(msg, Track):
        return msg.event
    if isinstance(msg, Page):
        return "page_view"
    if isinstance(msg, Screen):
        return "screen_view"
    return "group" if isinstance(msg, Group) else "identify"


def _campaign(ctx: Object, props: Object) -> dict[str, str]:
    """UTM fields from context.campaign, else from the page URL, else from utm_* properties."""
    found = ctx.get("campaign")
    if isinstance(found, dict) and found:
        return {k: str(v) for k, v in found.items() if k in _CAMPAIGN_FIELDS and v is not None}
    page = ctx.get("page")
    url = page.get("url") if isinstance(page, dict) else props.get("url")
    if isinstance(url, str) and "utm_" in url:
        query = parse_qs(urlsplit(url).query)
        return {k: query[utm][0] for k, utm in _UTM.items() if utm in query}
    return {k: str(props[utm]) for k, utm in _UTM.items() if props.get(utm) is not None}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass
class Rows:
    """Column lists for the store: events (EVENT_SCHEMA), trait merges, identity links."""

    events: dict[str, list[Any]] = field(
        default_factory=lambda: {name: [] for name in EVENT_SCHEMA.names}
    )
    customers: dict[str, list[Any]] = field(
        default_factory=lambda: {"customer_id": [], "traits": []}
    )
    links: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: Rows) -> None:
        for name, values in other.events.items():
            self.events[name].extend(values)
        for name, values in other.customers.items():
            self.customers[name].extend(values)
        self.links.extend(other.links)


def _properties(msg: _Message, ctx: Object, client_ip: str | None) -> tuple[Object, dict[str, str]]:
    """The event's properties (with ``context_*`` fields) and its UTM campaign fields."""
    if isinstance(msg, Identify | Group):
        props = dict(msg.traits or {})
        if isinstance(msg, Group):
            props["group_id"] = str(msg.groupId)
    else:
        props = dict(getattr(msg, "properties", None) or {})
        if isinstance(msg, Page | Screen):
            if msg.name is not None:
                props.setdefault("name", msg.name)
            if msg.category is not None:
                props.setdefault("category", msg.category)
    for src, dst in _CONTEXT_KEYS:
        value = ctx.get(src)
        if value is not None:
            props[dst] = value
    if client_ip and "context_ip" not in props:
        props["context_ip"] = client_ip
    page = ctx.get("page")
    if isinstance(page, dict):
        for src, dst in _PAGE_KEYS:
            value = page.get(src)
            if value is not None:
                props[dst] = value
    utm = _campaign(ctx, props)
    for key, value in utm.items():
        props["context_campaign_" + key] = value
    return props, utm


def to_rows(
    messages: list[tuple[int, _Message]], received: datetime, client_ip: str | None
) -> Rows:
    """Store rows for validated messages; ``received`` is aware UTC."""
    rows = Rows()
    ev = rows.events
    ids, customers, names, times = ev["event_id"], ev["customer_id"], ev["event"], ev["ts"]
    sessions, channels, campaigns = ev["session_id"], ev["channel"], ev["campaign"]
    revenues, properties = ev["revenue"], ev["properties"]
    links: dict[tuple[str, str], None] = {}  # each pair once, in order
    for _, msg in messages:
        user = None if msg.userId is None else str(msg.userId)
        anon = None if msg.anonymousId is None else str(msg.anonymousId)
        if isinstance(msg, Alias):
            assert user is not None  # checked
            links[(str(msg.previousId), user)] = None
            continue
        customer = user or anon
        assert customer is not None  # checked
        if user and anon and user != anon:
            links[(anon, user)] = None
        if isinstance(msg, Identify):
            rows.customers["customer_id"].append(customer)
            rows.customers["traits"].append(orjson.dumps(msg.traits or {}).decode())
        ctx = msg.context or {}
        props, utm = _properties(msg, ctx, client_ip)
        session = ctx.get("sessionId") or props.get("session_id") or props.get("sessionId")
        ids.append(msg.messageId or str(uuid.uuid4()))
        customers.append(customer)
        names.append(_event_name(msg))
        times.append(event_time(msg, received))
        sessions.append(None if session is None else str(session))
        channels.append(utm.get("source"))
        campaigns.append(utm.get("name"))
        revenues.append(_number(props.get("revenue")))
        properties.append(orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode())
    rows.links = list(links)
    return rows
