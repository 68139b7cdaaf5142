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

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from loudou.backends.base import CUSTOMER_SCHEMA, EVENT_SCHEMA

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


@dataclass(slots=True)
class Fields:
    """A valid message, flattened: what the row builder needs, whichever validator accepted it."""

    kind: str  # track, page, screen, identify, group, alias
    user: str | None
    anon: str | None
    message_id: str | None
    time: datetime  # the event's time, naive UTC (Segment's rule, see event_time)
    context: Object
    body: Object | None  # properties (track, page, screen) or traits (identify, group)
    name: str | None = None  # track's event; page's and screen's name
    category: str | None = None
    other_id: str | None = None  # group's groupId, alias's previousId


@dataclass
class Accepted:
    """Valid messages of one request, in order, and the problems of the others."""

    messages: list[Fields] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class _Slow(Exception):
    """The fast validator's way out: the message is unusual, so pydantic decides (and words the
    problem). Raised only for what the fast path does not handle, never a verdict."""


_SLOW = _Slow()
# The timestamp shapes the fast path parses itself; pydantic and datetime.fromisoformat agree on
# these (tests compare both paths). Anything else goes to pydantic.
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)?", re.ASCII)


class _Clock:
    """Per-request parsing state: the receive time, the future horizon, parsed timestamps."""

    __slots__ = ("cache", "horizon", "received")

    def __init__(self, received: datetime) -> None:
        self.received = _utc(received).replace(tzinfo=None)
        self.horizon = self.received + MAX_FUTURE
        self.cache: dict[str, datetime] = {}

    def parse(self, value: Any) -> datetime | None:
        """Naive UTC, or None if absent; _Slow if unusual (another shape, out of range)."""
        if value is None:
            return None
        if type(value) is not str:
            raise _SLOW
        got = self.cache.get(value)
        if got is None:
            if _TIME.fullmatch(value) is None:
                raise _SLOW
            try:
                got = _utc(datetime.fromisoformat(value)).replace(tzinfo=None)
            except (ValueError, OverflowError):
                raise _SLOW from None
            if len(self.cache) < 1024:
                self.cache[value] = got
        return got


def _id(value: Any) -> str | None:
    """``Id``: a string of 1 to 1024 characters or an integer, as text."""
    if value is None:
        return None
    kind = type(value)
    if kind is str:
        if 0 < len(value) <= 1024:
            return value
    elif kind is int:
        return str(value)
    raise _SLOW


def _text(value: Any, low: int = 0, high: int | None = None) -> str | None:
    if value is None:
        return None
    if type(value) is not str or len(value) < low or (high is not None and len(value) > high):
        raise _SLOW
    return value


def _object(value: Any) -> Object | None:
    if value is None or type(value) is dict:
        return value
    raise _SLOW


def _fast(item: Object, kind: str, clock: _Clock, shared: Object | None = None) -> Fields:
    """The common case without pydantic: the same checks and values as ``_slow`` for messages it
    accepts; _Slow for anything else (a problem to report, or a shape it does not parse)."""
    get = item.get
    user, anon = _id(get("userId")), _id(get("anonymousId"))
    message_id = _text(get("messageId"), 1, 255)
    parse = clock.parse
    ts, original, sent = (
        parse(get("timestamp")),
        parse(get("originalTimestamp")),
        parse(get("sentAt")),
    )
    context = get("context", shared)
    if context is None:
        context = {}
    elif type(context) is not dict:
        raise _SLOW
    name = category = other = body = None
    if kind == "track":
        name = _text(get("event"), 1, 255)
        if name is None:
            raise _SLOW
        body = _object(get("properties"))
    elif kind == "page" or kind == "screen":
        name, category = _text(get("name")), _text(get("category"))
        body = _object(get("properties"))
    elif kind == "identify":
        body = _object(get("traits"))
    elif kind == "group":
        other = _id(get("groupId"))
        body = _object(get("traits"))
        if other is None:
            raise _SLOW
    else:  # alias
        other = _id(get("previousId"))
        if other is None or user is None:
            raise _SLOW
    if user is None and anon is None:
        raise _SLOW
    if (ts is not None and ts > clock.horizon) or (
        original is not None and original > clock.horizon
    ):
        raise _SLOW
    if ts is not None:
        time = ts
    elif original is None:
        time = clock.received
    elif sent is None:
        time = original
    else:
        try:
            time = clock.received - (sent - original)
        except OverflowError:
            raise _SLOW from None
    return Fields(kind, user, anon, message_id, time, context, body, name, category, other)


def _slow(item: Any, prefix: str, index: int | None, now: datetime) -> Fields | Problem:
    """pydantic's validation, for messages the fast path leaves to it."""
    try:
        msg = _ONE.validate_python(item)
    except PydanticValidationError as e:
        return _problem_from(e, prefix, index)
    problem = check(msg, prefix, index, now)
    if problem is not None:
        return problem
    try:
        return _fields_of(msg, now)
    except OverflowError:  # sentAt and originalTimestamp thousands of years apart
        return Problem("invalid_field", _path(prefix, ("sentAt",)), "is out of range", index)


def _fields_of(msg: _Message, received: datetime) -> Fields:
    name = category = other = body = None
    if isinstance(msg, Track):
        name, body = msg.event, msg.properties
    elif isinstance(msg, Page | Screen):
        name, category, body = msg.name, msg.category, msg.properties
    elif isinstance(msg, Identify | Group):
        body = msg.traits
        if isinstance(msg, Group):
            other = str(msg.groupId)
    elif isinstance(msg, Alias):
        other = str(msg.previousId)
    return Fields(
        msg.type,  # type: ignore[attr-defined]
        None if msg.userId is None else str(msg.userId),
        None if msg.anonymousId is None else str(msg.anonymousId),
        msg.messageId,
        event_time(msg, received),
        msg.context or {},
        body,
        name,
        category,
        other,
    )


def validate_one(data: Any, kind: str, now: datetime) -> Accepted:
    """One message sent to ``/v1/<kind>``; its type comes from the endpoint."""
    if not isinstance(data, dict):
        return Accepted(problems=[Problem("invalid_json", "body", "must be a JSON object")])
    try:
        return Accepted(messages=[_fast(data, kind, _Clock(now))])
    except _Slow:
        pass
    got = _slow({**data, "type": kind}, "", None, now)
    return Accepted(problems=[got]) if isinstance(got, Problem) else Accepted(messages=[got])


def validate_batch(data: Any, body_size: int, now: datetime) -> Accepted:
    """``/v1/batch``: valid messages are kept, invalid ones reported by index."""
    if not isinstance(data, dict):
        return Accepted(problems=[Problem("invalid_json", "body", "must be a JSON object")])
    items = data.get("batch")
    if not isinstance(items, list):
        what = "is required" if items is None else "must be a list of messages"
        return Accepted(problems=[Problem("invalid_field", "batch", what)])
    shared = data.get("context")
    shared = shared if isinstance(shared, dict) else None
    result = Accepted()
    messages, problems = result.messages, result.problems
    clock = _Clock(now)
    big = body_size > MAX_EVENT_BYTES  # else no message can be over the limit
    for i, item in enumerate(items):
        if type(item) is not dict:
            problems.append(Problem("invalid_field", f"batch[{i}]", "must be a JSON object", i))
            continue
        if big and len(orjson.dumps(item)) > MAX_EVENT_BYTES:
            problems.append(
                Problem("payload_too_large", f"batch[{i}]", f"is over {MAX_EVENT_BYTES} bytes", i)
            )
            continue
        kind = item.get("type")
        try:
            if type(kind) is not str or kind not in MESSAGE_TYPES:
                raise _SLOW
            messages.append(_fast(item, kind, clock, shared))
            continue
        except _Slow:
            pass
        if shared is not None and "context" not in item:
            item = {**item, "context": shared}
        got = _slow(item, f"batch[{i}]", i, now)
        (problems if isinstance(got, Problem) else messages).append(got)  # type: ignore[arg-type]
    return result


def check(msg: _Message, prefix: str, index: int | None, now: datetime) -> Problem | None:
    """Rules pydantic cannot express per field: ids present, time not in the future."""
    where = prefix + "." if prefix else ""
    if isinstance(msg, Alias):
        if msg.userId is None:
            return Problem("missing_id", where + "userId", "is required for alias", index)
    elif msg.userId is None and msg.anonymousId is None:
        return Problem("missing_id", where + "userId", "userId or anonymousId is required", index)
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        value = getattr(msg, name)
        if value is None:
            continue
        try:
            utc = _utc(value)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            return Problem("invalid_field", where + name, "is out of range", index)
        if name != "sentAt" and utc > now + MAX_FUTURE:
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
_EVENT_NAMES = {
    "page": "page_view",
    "screen": "screen_view",
    "group": "group",
    "identify": "identify",
}


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
    """One write for the store: events (EVENT_SCHEMA), trait merges (CUSTOMER_SCHEMA) in order,
    identity links (alias, customer)."""

    events: pa.Table
    customers: pa.Table
    links: list[tuple[str, str]]

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        """Several requests' rows as one (Arrow concatenation copies no data)."""
        if len(parts) == 1:
            return parts[0]
        return cls(
            pa.concat_tables([p.events for p in parts]),
            pa.concat_tables([p.customers for p in parts]),
            [link for p in parts for link in p.links],
        )


def _properties(m: Fields, client_ip: str | None) -> tuple[Object, dict[str, str]]:
    """The event's properties (with ``context_*`` fields) and its UTM campaign fields."""
    props = dict(m.body) if m.body else {}
    if m.kind == "group":
        props["group_id"] = m.other_id
    elif m.kind == "page" or m.kind == "screen":
        if m.name is not None:
            props.setdefault("name", m.name)
        if m.category is not None:
            props.setdefault("category", m.category)
    ctx = m.context
    get = ctx.get
    for src, dst in _CONTEXT_KEYS:
        value = get(src)
        if value is not None:
            props[dst] = value
    if client_ip and "context_ip" not in props:
        props["context_ip"] = client_ip
    page = get("page")
    if type(page) is dict:
        get = page.get
        for src, dst in _PAGE_KEYS:
            value = get(src)
            if value is not None:
                props[dst] = value
    utm = _campaign(ctx, props)
    for key, value in utm.items():
        props["context_campaign_" + key] = value
    return props, utm


def to_rows(messages: list[Fields], client_ip: str | None) -> Rows:
    """Store rows (Arrow tables) for validated messages."""
    ids: list[str] = []
    customers: list[str] = []
    names: list[str] = []
    times: list[datetime] = []
    sessions: list[str | None] = []
    channels: list[str | None] = []
    campaigns: list[str | None] = []
    revenues: list[float | None] = []
    properties: list[str] = []
    trait_ids: list[str] = []
    traits: list[str] = []
    links: dict[tuple[str, str], None] = {}  # each pair once, in order
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    for m in messages:
        user, anon = m.user, m.anon
        if m.kind == "alias":
            assert user is not None and m.other_id is not None  # checked
            links[(m.other_id, user)] = None
            continue
        customer = user or anon
        assert customer is not None  # checked
        if user and anon and user != anon:
            links[(anon, user)] = None
        if m.kind == "identify":
            trait_ids.append(customer)
            traits.append(dumps(m.body or {}).decode())
        props, utm = _properties(m, client_ip)
        session = m.context.get("sessionId") or props.get("session_id") or props.get("sessionId")
        ids.append(m.message_id or str(uuid.uuid4()))
        customers.append(customer)
        names.append(m.name if m.kind == "track" else _EVENT_NAMES[m.kind])  # type: ignore[arg-type]
        times.append(m.time)
        sessions.append(None if session is None else str(session))
        channels.append(utm.get("source"))
        campaigns.append(utm.get("name"))
        revenues.append(_number(props.get("revenue")))
        properties.append(dumps(props, option=sort_keys).decode())
    columns = (ids, customers, names, times, sessions, channels, campaigns, revenues, properties)
    return Rows(
        pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, EVENT_SCHEMA, strict=True)],
            schema=EVENT_SCHEMA,
        ),
        pa.Table.from_arrays(
            [pa.array(trait_ids, pa.string()), pa.array(traits, pa.string())],
            schema=CUSTOMER_SCHEMA,
        ),
        list(links),
    )


@dataclass
class Parsed:
    """A tracking request's body, parsed and validated: what the handler needs to answer."""

    key: str | None = None  # a ``writeKey`` field of the body, if any
    problem: Problem | None = None  # the body as a whole is unusable
    accepted: int = 0
    problems: list[Problem] = field(default_factory=list)
    rows: Rows | None = None  # the accepted messages' rows


def parse_request(kind: str, body: bytes, received: datetime, client_ip: str | None) -> Parsed:
    """Everything a tracking request needs done before its rows are stored (pure, so it can run
    in a worker process)."""
    data = parse_body(body)
    if isinstance(data, Problem):
        return Parsed(problem=data)
    found = data.get("writeKey") if isinstance(data, dict) else None
    key = found if isinstance(found, str) else None
    if kind == "batch":
        accepted = validate_batch(data, len(body), received)
    else:
        accepted = validate_one(data, kind, received)
    rows = to_rows(accepted.messages, client_ip) if accepted.messages else None
    return Parsed(key, None, len(accepted.messages), accepted.problems, rows)
