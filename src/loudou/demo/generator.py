"""A synthetic business to try loudou on: customers with demographics, their journeys, and ad spend.

Why: funnels, segments, CAC and CLV need data with known answers. Each customer climbs a stage
ladder (aware → interest → consideration → intent → negotiation → purchase → repeat) whose step
probabilities depend on their traits, so the segments in :data:`PLANTED_EFFECTS` really convert
differently and later analyses can be checked for finding them. Two more effects are planted for
diagnose: a three-week payment outage on mobile (:data:`PLANTED_PERIODS`) and deals sent back from
intent to qualification (:data:`PLANTED_LOOPS`). Journeys are not linear: visitors come back over
several sessions and channels (B2C about 8 touches before buying, B2B 7–13), browse pricing and
content back and forth, and some consumers leave at the checkout page.

Everything is vectorised numpy drawn from generators seeded by ``seed`` (the checkout and its
planted outage have their own stream), so a seed gives identical tables.
Times are naive UTC microseconds; money is CNY.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.backends.base import CUSTOMER_SCHEMA, EVENT_SCHEMA, SPEND_SCHEMA
from loudou.demo.planted import (
    CHECKOUT_ABANDON,
    PLANTED_EFFECTS,
    PLANTED_LOOPS,
    PLANTED_PERIODS,
)

if TYPE_CHECKING:
    from loudou.backends.base import Store

Rows = dict[str, np.ndarray]

SECOND = 1_000_000  # timestamps are int64 microseconds
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
CURRENCY = "CNY"

# ---- vocabularies -------------------------------------------------------------------------------

CHANNELS = ("search", "social", "email", "referral", "offline_event")
SESSION_CHANNELS = (*CHANNELS, "direct")  # returning visitors also type the address
DIRECT = len(CHANNELS)
UTM_MEDIUM = ("cpc", "paid_social", "email", "referral", "event", None)

STAGES = ("aware", "interest", "consideration", "intent", "negotiation", "purchase", "repeat")
AWARE, INTEREST, CONSIDER, INTENT, NEGOTIATE, PURCHASE, REPEAT = range(len(STAGES))
DEAL_STAGES = ("lead", "qualified", "intent", "negotiation", "won", "lost")
LOST = DEAL_STAGES.index("lost")

EVENTS = (
    "ad_click",
    "email_clicked",
    "event_attended",
    "page_view",
    "content_download",
    "signup",
    "trial_start",
    "demo_request",
    "order_completed",
    "nps_submitted",
    "referral_sent",
    "deal_stage_changed",
    "quote_sent",
)
(
    AD_CLICK,
    EMAIL_CLICKED,
    EVENT_ATTENDED,
    PAGE_VIEW,
    CONTENT_DOWNLOAD,
    SIGNUP,
    TRIAL_START,
    DEMO_REQUEST,
    ORDER,
    NPS,
    REFERRAL_SENT,
    DEAL_STAGE,
    QUOTE_SENT,
) = range(len(EVENTS))
TOUCH_EVENTS = ("ad_click", "email_clicked", "event_attended", "page_view")
# The touch event that opens a session from each channel (referral and direct land on a page).
TOUCH_OF_CHANNEL = np.array([AD_CLICK, AD_CLICK, EMAIL_CLICKED, -1, EVENT_ATTENDED, -1])

PAGES = (
    "home",
    "product",
    "blog",
    "case_studies",
    "docs",
    "about",
    "pricing",
    "resources",
    "signup",
    "checkout",
    "survey",
    "account",
)
PAGE = {name: i for i, name in enumerate(PAGES)}
PATHS = tuple("/" if p == "home" else "/" + p.replace("_", "-") for p in PAGES)
# Page mix of a browsing session by the customer's stage: pricing only once they consider buying,
# account pages once they bought. Mixing pricing with content gives back-and-forth paths.
_EARLY = {"home": 28, "product": 25, "blog": 25, "case_studies": 10, "docs": 4, "about": 8}
_MID = {
    "home": 10,
    "product": 18,
    "blog": 18,
    "case_studies": 12,
    "docs": 6,
    "about": 2,
    "pricing": 34,
}
_LATE = {
    "home": 8,
    "product": 12,
    "blog": 12,
    "case_studies": 4,
    "docs": 22,
    "pricing": 10,
    "account": 30,
}
_MIX_BY_STAGE = (_EARLY, _EARLY, _MID, _MID, _MID, _LATE, _LATE)
PAGE_MIX = np.array([[mix.get(p, 0) for p in PAGES] for mix in _MIX_BY_STAGE], dtype=float)
PAGES_PER_SESSION = 5.5  # mean extra page views after the landing page

GENDERS = ("female", "male", "other")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_EDGES = (25, 35, 45, 55)
DEVICES = ("desktop", "mobile")
SEGMENTS = ("consumer", "business")
COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
COMPANY_SIZE_P = (0.2, 0.3, 0.25, 0.17, 0.08)
DEAL_VALUE_BY_SIZE = (12_000.0, 30_000.0, 60_000.0, 120_000.0, 250_000.0)

# city, region, country, weight
CITIES: tuple[tuple[str, str, str, float], ...] = (
    ("Shanghai", "East", "CN", 14),
    ("Hangzhou", "East", "CN", 7),
    ("Nanjing", "East", "CN", 5),
    ("Suzhou", "East", "CN", 4),
    ("Beijing", "North", "CN", 13),
    ("Tianjin", "North", "CN", 4),
    ("Shenyang", "North", "CN", 3),
    ("Guangzhou", "South", "CN", 9),
    ("Shenzhen", "South", "CN", 10),
    ("Xiamen", "South", "CN", 3),
    ("Chengdu", "West", "CN", 7),
    ("Chongqing", "West", "CN", 5),
    ("Xi'an", "West", "CN", 3),
    ("Kunming", "West", "CN", 2),
    ("Wuhan", "Central", "CN", 4),
    ("Changsha", "Central", "CN", 3),
    ("Singapore", "Overseas", "SG", 2),
    ("Kuala Lumpur", "Overseas", "MY", 1),
    ("London", "Overseas", "GB", 1),
    ("San Francisco", "Overseas", "US", 1),
)
CITY_NAMES = tuple(c[0] for c in CITIES)
REGIONS = tuple(dict.fromkeys(c[1] for c in CITIES))
COUNTRIES = tuple(dict.fromkeys(c[2] for c in CITIES))

# Per-event detail property: key and vocabulary (drawn uniformly unless said otherwise).
DETAILS: dict[int, tuple[str, tuple[str, ...]]] = {
    CONTENT_DOWNLOAD: (
        "asset",
        ("funnel_playbook", "retail_case_study", "b2b_whitepaper", "kpi_templates", "webinar"),
    ),
    SIGNUP: ("method", ("email", "wechat", "phone")),
    TRIAL_START: ("plan", ("starter", "pro")),
    DEMO_REQUEST: ("team_size", COMPANY_SIZES),
    REFERRAL_SENT: ("method", ("wechat", "link", "email")),
    DEAL_STAGE: ("lost_reason", ("price", "competitor", "no_decision", "timing")),
}


@dataclass(frozen=True)
class Campaign:
    """An acquisition campaign: who it brings, what a visitor costs, and when it runs."""

    channel: str
    name: str
    share_b2c: float
    share_b2b: float
    cost_per_visitor: float
    daily_base: float
    schedule: str = "daily"  # daily | tuesday (newsletter) | saturday (roadshow) | expo
    boost: float = 0.0  # extra arrivals on scheduled days
    event_cost: float = 0.0  # fixed cost on scheduled days (booths, venues)


CAMPAIGNS = (
    Campaign("search", "brand_search", 0.12, 0.14, 9.0, 300.0),
    Campaign("search", "generic_search", 0.16, 0.16, 26.0, 500.0),
    Campaign("social", "wechat_moments", 0.12, 0.05, 14.0, 400.0),
    Campaign("social", "douyin_video", 0.14, 0.03, 11.0, 500.0),
    Campaign("social", "xiaohongshu_notes", 0.08, 0.02, 16.0, 250.0),
    Campaign("email", "newsletter", 0.10, 0.10, 1.5, 60.0, "tuesday", 3.0),
    Campaign("email", "nurture_sequence", 0.06, 0.12, 2.5, 40.0),
    Campaign("referral", "referral_rewards", 0.14, 0.14, 30.0, 100.0),
    Campaign("offline_event", "expo", 0.04, 0.14, 90.0, 300.0, "expo", 40.0, 30_000.0),
    Campaign("offline_event", "roadshow", 0.04, 0.10, 70.0, 200.0, "saturday", 10.0, 5_000.0),
)
CAMPAIGN_NAMES = tuple(c.name for c in CAMPAIGNS)
CAMPAIGN_CHANNEL = np.array([CHANNELS.index(c.channel) for c in CAMPAIGNS])

# ---- the stage ladder and the planted segments --------------------------------------------------

# Probability of entering each stage from the one before, for consumers (row 0) and businesses
# (row 1). Consumers skip negotiation. Median days spent before each stage are in GAP_DAYS.
STAGE_P = np.array(
    [
        [1.0, 0.60, 0.70, 0.55, 1.00, 0.60, 0.50],
        [1.0, 0.65, 0.70, 0.60, 0.65, 0.55, 0.35],
    ]
)
GAP_DAYS = np.array(
    [
        [0.0, 1.0, 1.5, 2.0, 0.0, 3.0, 30.0],
        [0.0, 2.0, 5.0, 7.0, 10.0, 14.0, 60.0],
    ]
)


# ---- results ------------------------------------------------------------------------------------


@dataclass
class DemoData:
    """The generated tables (store schemas) and the period they cover; see :func:`load`."""

    events: pa.Table
    customers: pa.Table
    spend: pa.Table
    start: date
    end: date  # exclusive
    seed: int


# ---- small vectorised helpers -------------------------------------------------------------------


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner index repeated ``counts`` times and the rank within each owner (a loop, vectorised)."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - np.repeat(starts, counts)


def _cumsum_within(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running sum of ``values``, restarting at each run of equal ``group`` (sorted by group)."""
    if values.size == 0:
        return values
    total = np.cumsum(values)
    first = np.r_[True, group[1:] != group[:-1]]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.r_[starts, values.size])
    before = np.repeat(total[starts] - values[starts], sizes)
    return total - before


def _pick(rng: np.random.Generator, weights: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One category per row, drawn from the weight row of its group."""
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(group.size)[:, None]
    return np.minimum((u > cum[group]).sum(axis=1), weights.shape[1] - 1)


def _days(rng: np.random.Generator, median_days: np.ndarray) -> np.ndarray:
    """Waiting times (µs) with the given medians. Waits of a day or more keep the time of day,
    because people tend to come back at their usual hours."""
    days = np.asarray(median_days, dtype=float) * rng.lognormal(0.0, 0.9, np.shape(median_days))
    whole = np.where(days >= 1, np.round(days) * DAY + rng.normal(0, 1.5 * HOUR, days.shape), 0)
    out = np.where(days >= 1, whole, days * DAY)
    return np.where(median_days > 0, np.maximum(out, HOUR), 0).astype(np.int64)


def _rows(n: int, **cols: np.ndarray | int | float) -> Rows:
    """Event rows with every field present; fields not given get their 'missing' value."""
    out: Rows = {}
    for name, missing in _FIELDS.items():
        value = cols.pop(name, missing)
        dtype = np.float64 if isinstance(missing, float) else np.int64
        out[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,))
    if cols:
        raise TypeError(f"unknown event fields {sorted(cols)}")
    return out


_FIELDS: dict[str, int | float] = {
    "cust": -1,
    "ts": 0,
    "event": -1,
    "session": -1,
    "pos": 0,
    "channel": -1,
    "campaign": -1,
    "device": -1,
    "page": -1,
    "revenue": float("nan"),
    "amount": float("nan"),
    "order_no": -1,
    "score": -1,
    "first_visit": 0,
    "from_stage": -1,
    "to_stage": -1,
    "detail": -1,
}


def _concat(parts: Sequence[Rows]) -> Rows:
    return {k: np.concatenate([p[k] for p in parts]) for k in _FIELDS}


def _take(rows: Rows, index: np.ndarray) -> Rows:
    return {k: v[index] for k, v in rows.items()}


def _labels(codes: np.ndarray, names: Sequence[str | None]) -> pa.Array:
    """Codes to strings; negative codes (and None names) become null."""
    codes = np.asarray(codes, dtype=np.int64)
    return pc.take(pa.array(list(names), pa.string()), pa.array(codes, mask=codes < 0))


def _numbers(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    return pa.array(values, mask=missing)


def _prefixed(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'c000042'-style ids: a prefix and a zero-padded number."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _json_objects(fields: Sequence[tuple[str, pa.Array]]) -> pa.Array:
    """JSON object text per row from typed columns; a null leaves its key out.

    Values are our own vocabulary (no quotes or backslashes), so quoting is enough.
    """
    pieces = []
    for key, values in fields:
        text = (
            pc.binary_join_element_wise('"', values, '"', "")
            if pa.types.is_string(values.type)
            else pc.cast(values, pa.string())
        )
        pieces.append(pc.fill_null(pc.binary_join_element_wise(f',"{key}":', text, ""), ""))
    body = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*pieces, ""), 1)
    return pc.binary_join_element_wise("{", body, "}", "")


# ---- customers ----------------------------------------------------------------------------------


@dataclass
class _People:
    """Per-customer arrays. ``traits`` holds categorical traits as (codes, labels)."""

    b2b: np.ndarray
    campaign: np.ndarray
    t0: np.ndarray  # first touch, µs since start
    age: np.ndarray
    deal_value: np.ndarray
    traits: dict[str, tuple[np.ndarray, tuple[str, ...]]]

    def code(self, trait: str) -> np.ndarray:
        return self.traits[trait][0]

    def has(self, trait: str, value: str) -> np.ndarray:
        codes, labels = self.traits[trait]
        return codes == labels.index(value)


def _calendar(start: date, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Weekday (0 = Monday) and a seasonal weight (weekends quieter, steady growth) per day."""
    day = np.arange(n_days)
    weekday = (start.weekday() + day) % 7
    season = np.select([weekday == 5, weekday == 6], [0.8, 0.75], 1.0) * (1 + 0.5 * day / n_days)
    return weekday, season


def _scheduled(campaign: Campaign, weekday: np.ndarray) -> np.ndarray:
    """Days a campaign's scheduled activity (newsletter, expo, roadshow) takes place."""
    day = np.arange(weekday.size)
    if campaign.schedule == "tuesday":
        return weekday == 1
    if campaign.schedule == "saturday":
        return weekday == 5
    if campaign.schedule == "expo":
        return np.isin(day % 28, (11, 12))
    return np.zeros(weekday.size, dtype=bool)


def _arrival_weights(start: date, n_days: int) -> np.ndarray:
    """Relative arrivals per (campaign, day)."""
    weekday, season = _calendar(start, n_days)
    return np.array([season * (1 + c.boost * _scheduled(c, weekday)) for c in CAMPAIGNS])


def _people(rng: np.random.Generator, n: int, start: date, n_days: int) -> _People:
    """Who the customers are and when and where from they first arrive."""
    b2b = rng.random(n) < 0.25
    shares = np.array([[c.share_b2c for c in CAMPAIGNS], [c.share_b2b for c in CAMPAIGNS]])
    campaign = _pick(rng, shares, b2b.astype(int))
    day = _pick(rng, _arrival_weights(start, n_days), campaign)
    # Activity peaks around 10:00 and 21:00 China time (02:00 and 13:00 UTC).
    hour = np.where(rng.random(n) < 0.4, rng.normal(2, 1.5, n), rng.normal(13, 2, n)) % 24
    t0 = (day * DAY + hour * HOUR).astype(np.int64)
    age = np.clip(np.where(b2b, rng.normal(39, 8, n), rng.normal(33, 11, n)), 18, 75).astype(int)
    city = rng.choice(len(CITIES), n, p=_normalised([c[3] for c in CITIES]))
    size = np.where(b2b, rng.choice(len(COMPANY_SIZES), n, p=COMPANY_SIZE_P), -1)
    mobile = rng.random(n) < np.where(b2b, 0.25, 0.62)
    deal_value = np.array(DEAL_VALUE_BY_SIZE)[np.maximum(size, 0)] * rng.lognormal(0, 0.4, n)
    traits = {
        "segment": (b2b.astype(int), SEGMENTS),
        "gender": (rng.choice(3, n, p=(0.5, 0.47, 0.03)), GENDERS),
        "age_band": (np.searchsorted(AGE_EDGES, age, side="right"), AGE_BANDS),
        "city": (city, CITY_NAMES),
        "region": (np.array([REGIONS.index(c[1]) for c in CITIES])[city], REGIONS),
        "country": (np.array([COUNTRIES.index(c[2]) for c in CITIES])[city], COUNTRIES),
        "device": (mobile.astype(int), DEVICES),
        "company_size": (size, COMPANY_SIZES),
        "acquisition_channel": (CAMPAIGN_CHANNEL[campaign], CHANNELS),
        "acquisition_campaign": (campaign, CAMPAIGN_NAMES),
    }
    return _People(b2b, campaign, t0, age, np.round(deal_value, -2), traits)


def _normalised(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


# ---- journeys -----------------------------------------------------------------------------------


def _ladder(rng: np.random.Generator, people: _People) -> tuple[np.ndarray, np.ndarray]:
    """Highest stage each customer reaches, and when they would reach every stage."""
    seg = people.b2b.astype(int)
    p = STAGE_P[seg].copy()
    for effect in PLANTED_EFFECTS:
        p[people.has(effect.trait, effect.value), STAGES.index(effect.stage)] *= effect.factor
    passed = rng.random(p.shape) < np.minimum(p, 0.98)
    passed[:, AWARE] = True
    level = np.cumprod(passed, axis=1).sum(axis=1) - 1
    times = people.t0[:, None] + np.cumsum(_days(rng, GAP_DAYS[seg]), axis=1)
    return level, times


def _checkout(
    rng: np.random.Generator, people: _People, level: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the planted outages, and pick who leaves at checkout without paying.

    Returns the new levels and the customers with an unpaid checkout (at their purchase time):
    those a payment outage stopped and some consumers who stopped just before buying anyway.
    """
    web = ~people.b2b
    level = level.copy()
    failed = np.zeros(level.size, dtype=bool)
    for p in PLANTED_PERIODS:
        at = STAGES.index(p.stage)
        day = times[:, at] // DAY
        when = (day >= p.first_day) & (day < p.first_day + p.days)
        hit = web & people.has(p.trait, p.value) & (level >= at) & when
        stopped = hit & (rng.random(level.size) >= p.factor)
        level[stopped] = at - 1
        failed |= stopped & (at == PURCHASE)
    # Consumers pass 'negotiation' unseen, so those who stop before buying are at that level.
    leaves = web & (level == PURCHASE - 1) & (rng.random(level.size) < CHECKOUT_ABANDON)
    return level, np.flatnonzero(failed | leaves)


def _deal_times(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """CRM times of deal stages lead..won: sales records a stage hours after the buyer's step."""
    lag = (rng.lognormal(np.log(4), 0.8, (times.shape[0], 5)) * HOUR).astype(np.int64)
    crm = np.maximum.accumulate(times[:, INTEREST:REPEAT] + lag, axis=1)
    return crm + np.arange(5) * MINUTE


@dataclass
class _Orders:
    cust: np.ndarray
    t: np.ndarray
    number: np.ndarray  # 1 = first order
    revenue: np.ndarray


def _orders(
    rng: np.random.Generator,
    people: _People,
    level: np.ndarray,
    times: np.ndarray,
    first: np.ndarray,
) -> _Orders:
    """First and repeat orders of buyers; B2B repeats are renewals and expansions."""
    buyers = np.flatnonzero(level >= PURCHASE)
    b2b = people.b2b[buyers]
    extra = rng.poisson(np.where(b2b, 0.5, 0.9))
    n_orders = 1 + (level[buyers] >= REPEAT) * (1 + extra)
    owner, rank = _expand(n_orders)
    cust = buyers[owner]
    later = _days(rng, np.where(people.b2b[cust], 90.0, 35.0))
    gap = np.select([rank == 0, rank == 1], [0, times[cust, REPEAT] - times[cust, PURCHASE]], later)
    b2c_value = np.where(rank == 0, 299.0, 199.0) * rng.lognormal(0, 0.55, cust.size)
    b2b_value = people.deal_value[cust] * np.where(
        rank == 0, 0.92, rng.uniform(0.3, 0.8, cust.size)
    )
    revenue = np.round(np.where(people.b2b[cust], b2b_value, b2c_value), 2)
    return _Orders(cust, first[cust] + _cumsum_within(cust, gap), rank + 1, revenue)


@dataclass
class _Advocacy:
    nps_cust: np.ndarray
    nps_t: np.ndarray
    score: np.ndarray
    referral_cust: np.ndarray
    referral_t: np.ndarray


def _advocacy(rng: np.random.Generator, orders: _Orders) -> _Advocacy:
    """NPS answers after the first order (second, for repeat buyers); promoters refer friends."""
    first = np.flatnonzero(np.r_[True, orders.cust[1:] != orders.cust[:-1]])
    n_orders = np.diff(np.r_[first, orders.cust.size])
    survey_after = first + np.minimum(n_orders, 2) - 1
    cust, t_last = orders.cust[first], orders.t[survey_after]
    answers = rng.random(cust.size) < 0.6
    mean = 7.2 + 0.8 * np.minimum(n_orders - 1, 3)
    score = np.clip(np.round(rng.normal(mean, 2.0)), 0, 10).astype(np.int64)
    t_nps = t_last + _days(rng, np.full(cust.size, 8.0))
    p_refer = np.where(answers, np.select([score >= 9, score >= 7], [0.6, 0.15], 0.02), 0.08)
    refers = rng.random(cust.size) < p_refer
    t_ref = np.where(answers, t_nps, t_last) + _days(rng, np.where(answers, 3.0, 20.0))
    return _Advocacy(cust[answers], t_nps[answers], score[answers], cust[refers], t_ref[refers])


# ---- sessions -----------------------------------------------------------------------------------

# What a session is for: the milestone it carries, the page before it, its stage for the page mix.
# An unpaid checkout carries no milestone: the checkout page and no order.
(
    BROWSE,
    FIRST,
    CONTENT,
    PRICING,
    SIGNUP_KIND,
    ORDER_KIND,
    NPS_KIND,
    REFERRAL_KIND,
    UNPAID_KIND,
) = range(9)
KIND_STAGE = np.array([-1, AWARE, INTEREST, CONSIDER, INTENT, PURCHASE, PURCHASE, PURCHASE, INTENT])
KIND_EVENT = np.array([-1, -1, CONTENT_DOWNLOAD, PAGE_VIEW, SIGNUP, ORDER, NPS, REFERRAL_SENT, -1])
KIND_PRE_PAGE = np.array(
    [
        -1,
        -1,
        PAGE["resources"],
        -1,
        PAGE["signup"],
        PAGE["checkout"],
        PAGE["survey"],
        PAGE["account"],
        PAGE["checkout"],
    ]
)


@dataclass
class _Sessions:
    cust: np.ndarray
    start: np.ndarray
    kind: np.ndarray
    ref: np.ndarray  # row in the orders (ORDER) or NPS answers (NPS) it carries, else -1


def _milestone_sessions(
    people: _People,
    level: np.ndarray,
    times: np.ndarray,
    orders: _Orders,
    adv: _Advocacy,
    unpaid: np.ndarray,
) -> _Sessions:
    """One session per web milestone and unpaid checkout; B2B orders happen in the CRM instead."""
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray | int]] = []
    for kind in (FIRST, CONTENT, PRICING, SIGNUP_KIND):
        stage = KIND_STAGE[kind]
        cust = np.flatnonzero(level >= stage)
        parts.append((cust, times[cust, stage], kind, -1))
    web = np.flatnonzero(~people.b2b[orders.cust])
    parts.append((orders.cust[web], orders.t[web], ORDER_KIND, web))
    parts.append((adv.nps_cust, adv.nps_t, NPS_KIND, np.arange(adv.nps_cust.size)))
    parts.append((adv.referral_cust, adv.referral_t, REFERRAL_KIND, -1))
    parts.append((unpaid, times[unpaid, PURCHASE], UNPAID_KIND, -1))
    return _Sessions(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]).astype(np.int64),
        np.concatenate([np.full(p[0].size, p[2]) for p in parts]),
        np.concatenate([np.broadcast_to(p[3], p[0].shape) for p in parts]),
    )


def _browse_sessions(
    rng: np.random.Generator,
    people: _People,
    level: np.ndarray,
    times: np.ndarray,
    first: np.ndarray,
) -> _Sessions:
    """Extra visits between milestones (buyers: ~8 touches B2C, 7–13 B2B) and after buying."""
    n = level.size
    buyer = level >= PURCHASE
    n_before = np.where(
        buyer,
        np.where(people.b2b, rng.integers(3, 10, n), rng.poisson(3.0, n)),
        rng.poisson(2.4 + 1.5 * level),
    )
    linger = (rng.exponential(7, n) * DAY).astype(np.int64)
    last_milestone = times[np.arange(n), np.minimum(level, PURCHASE)]
    end = np.where(buyer, first, last_milestone + linger)
    n_after = np.where(buyer, rng.poisson(8.0, n), 0)
    before = np.repeat(np.arange(n), n_before)
    after = np.repeat(np.arange(n), n_after)
    cust = np.r_[before, after]
    lo = np.r_[people.t0[before], first[after]]
    span = np.r_[end[before] - people.t0[before], np.full(after.size, 90 * DAY)]
    offset = _same_hour(rng, rng.random(cust.size) * span)
    offset = np.clip(offset, 10 * MINUTE, np.maximum(span - 30 * MINUTE, 10 * MINUTE))
    return _Sessions(cust, lo + offset, np.full(cust.size, BROWSE), np.full(cust.size, -1))


def _same_hour(rng: np.random.Generator, offset: np.ndarray) -> np.ndarray:
    """Round offsets of a day or more to whole days (plus jitter): visits keep their hour."""
    whole = np.round(offset / DAY) * DAY + rng.normal(0, HOUR, offset.shape)
    return np.where(offset >= DAY, whole, offset).astype(np.int64)


def _sessions(
    rng: np.random.Generator,
    people: _People,
    level: np.ndarray,
    times: np.ndarray,
    first: np.ndarray,
    orders: _Orders,
    adv: _Advocacy,
    unpaid: np.ndarray,
) -> _Sessions:
    """Every visit: milestone sessions first, then browsing ones (ids are later given by time)."""
    ms = _milestone_sessions(people, level, times, orders, adv, unpaid)
    br = _browse_sessions(rng, people, level, times, first)
    return _Sessions(
        *(np.r_[a, b] for a, b in zip(vars(ms).values(), vars(br).values(), strict=True))
    )


def _return_campaign(rng: np.random.Generator, own: np.ndarray) -> np.ndarray:
    """Campaign a returning visit comes from: their own again, direct (-1), or any other."""
    shares = _normalised([c.share_b2c + c.share_b2b for c in CAMPAIGNS])
    other = rng.choice(len(CAMPAIGNS), own.size, p=shares)
    r = rng.random(own.size)
    return np.select([r < 0.35, r < 0.7], [own, -1], other)


def _session_stage(s: _Sessions, level: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Stage the customer is at when the session starts (milestone sessions: their own stage)."""
    passed = (times[s.cust, 1:] <= s.start[:, None]).sum(axis=1)
    return np.where(s.kind == BROWSE, np.minimum(level[s.cust], passed), KIND_STAGE[s.kind])


def _session_rows(
    rng: np.random.Generator,
    people: _People,
    s: _Sessions,
    level: np.ndarray,
    times: np.ndarray,
    orders: _Orders,
    adv: _Advocacy,
) -> Rows:
    """Expand sessions into events: touch, landing page, pages, milestone, more pages."""
    n = s.cust.size
    own = people.campaign[s.cust]
    campaign = np.where(s.kind == FIRST, own, _return_campaign(rng, own))
    channel = np.where(campaign >= 0, CAMPAIGN_CHANNEL[np.maximum(campaign, 0)], DIRECT)
    stage = _session_stage(s, level, times)
    touch = TOUCH_OF_CHANNEL[channel]
    n_pages = rng.poisson(PAGES_PER_SESSION, n)
    n_early = rng.binomial(n_pages, 0.6)
    t_idx = np.flatnonzero(touch >= 0)
    pre = KIND_PRE_PAGE[s.kind]
    pre_idx = np.flatnonzero(pre >= 0)
    parts = [
        _rows(
            t_idx.size,
            session=t_idx,
            event=touch[t_idx],
            channel=channel[t_idx],
            campaign=campaign[t_idx],
        ),
        _rows(
            n,
            session=np.arange(n),
            pos=1,
            event=PAGE_VIEW,
            page=_pick(rng, PAGE_MIX, stage),
            channel=channel,
            campaign=campaign,
            first_visit=s.kind == FIRST,
        ),
        _page_views(rng, n_early, stage, first_pos=2),
        _rows(pre_idx.size, session=pre_idx, pos=1000, event=PAGE_VIEW, page=pre[pre_idx]),
        *_milestone_rows(rng, people, s, orders, adv),
        _page_views(rng, n_pages - n_early, stage, first_pos=1003),
    ]
    rows = _concat(parts)
    rows = _take(rows, np.lexsort((rows["pos"], rows["session"])))
    session = rows["session"]
    gaps = ((rng.exponential(50, session.size) + 2) * SECOND).astype(np.int64)
    gaps[np.r_[True, session[1:] != session[:-1]]] = 0
    rows["ts"] = s.start[session] + _cumsum_within(session, gaps)
    rows["cust"] = s.cust[session]
    # People sometimes use their other device, but pay on their own (the outage hits by it).
    flip = (rng.random(n) < 0.12) & ~np.isin(s.kind, (ORDER_KIND, UNPAID_KIND))
    rows["device"] = (people.code("device")[s.cust] ^ flip)[session]
    return rows


def _page_views(
    rng: np.random.Generator, counts: np.ndarray, stage: np.ndarray, first_pos: int
) -> Rows:
    session, rank = _expand(counts)
    page = _pick(rng, PAGE_MIX, stage[session])
    return _rows(session.size, session=session, pos=first_pos + rank, event=PAGE_VIEW, page=page)


def _at(values: np.ndarray, ref: np.ndarray, missing: int | float) -> np.ndarray:
    """values[ref] where ref >= 0, else ``missing``."""
    if values.size == 0:
        return np.full(ref.shape, missing)
    return np.where(ref >= 0, values[np.maximum(ref, 0)], missing)


def _milestone_rows(
    rng: np.random.Generator, people: _People, s: _Sessions, orders: _Orders, adv: _Advocacy
) -> tuple[Rows, Rows]:
    """The milestone event of each session; signing up is followed by a trial or demo request."""
    idx = np.flatnonzero(KIND_EVENT[s.kind] >= 0)
    kind, cust, ref = s.kind[idx], s.cust[idx], s.ref[idx]
    event = KIND_EVENT[kind]
    order_ref = np.where(kind == ORDER_KIND, ref, -1)
    nps_ref = np.where(kind == NPS_KIND, ref, -1)
    main = _rows(
        idx.size,
        session=idx,
        pos=1001,
        event=event,
        page=np.where(kind == PRICING, PAGE["pricing"], -1),
        revenue=_at(orders.revenue, order_ref, np.nan),
        order_no=_at(orders.number, order_ref, -1),
        score=_at(adv.score, nps_ref, -1),
        detail=_details(rng, event, people.code("company_size")[cust]),
    )
    signup = np.flatnonzero(kind == SIGNUP_KIND)
    follow = np.where(people.b2b[cust[signup]], DEMO_REQUEST, TRIAL_START)
    second = _rows(
        signup.size,
        session=idx[signup],
        pos=1002,
        event=follow,
        detail=_details(rng, follow, people.code("company_size")[cust[signup]]),
    )
    return main, second


def _details(rng: np.random.Generator, event: np.ndarray, company_size: np.ndarray) -> np.ndarray:
    """Detail codes (asset, signup method, plan, ...) per event; demo requests give team size."""
    codes = np.full(event.size, -1)
    for code, (_, vocab) in DETAILS.items():
        hit = event == code
        codes[hit] = rng.integers(0, len(vocab), int(hit.sum()))
    return np.where(event == DEMO_REQUEST, company_size, codes)


# ---- CRM (B2B sales) ----------------------------------------------------------------------------

# Lost deals in the West region mostly cite price (it is where negotiation is planted to fail).
LOST_REASON_WEIGHTS = np.array([[25, 30, 30, 15], [55, 20, 15, 10]], dtype=float)


def _crm_rows(
    rng: np.random.Generator, people: _People, level: np.ndarray, crm: np.ndarray, orders: _Orders
) -> Rows:
    """Deal stage changes, quotes, lost deals and invoiced orders of business customers."""
    b2b, value = people.b2b, people.deal_value
    parts = []
    for j in range(LOST):  # lead .. won
        cust = np.flatnonzero(b2b & (level >= INTEREST + j))
        parts.append(_stage_change(cust, crm[cust, j], j - 1, j, value))
    nego = np.flatnonzero(b2b & (level >= NEGOTIATE))
    quote = np.round(value[nego] * 1.1, -2)
    parts.append(
        _rows(nego.size, cust=nego, ts=crm[nego, 3] + 20 * MINUTE, event=QUOTE_SENT, amount=quote)
    )
    for loop in PLANTED_LOOPS:  # some deals go back a stage before negotiating
        a, b = DEAL_STAGES.index(loop.stage), DEAL_STAGES.index(loop.back_to)
        back = nego[rng.random(nego.size) < loop.share]
        span = crm[back, a + 1] - crm[back, a]
        parts.append(_stage_change(back, crm[back, a] + span * 3 // 10, a, b, value))
        parts.append(_stage_change(back, crm[back, a] + span * 6 // 10, b, a, value))
    stalled = np.flatnonzero(b2b & (level >= INTEREST) & (level < PURCHASE))
    lost = stalled[rng.random(stalled.size) < 0.85]
    when = crm[lost, level[lost] - 1] + _days(rng, np.full(lost.size, 10.0))
    row = _stage_change(lost, when, level[lost] - 1, LOST, value)
    row["detail"] = _pick(rng, LOST_REASON_WEIGHTS, people.has("region", "West")[lost].astype(int))
    parts.append(row)
    o = np.flatnonzero(b2b[orders.cust])
    parts.append(
        _rows(
            o.size,
            cust=orders.cust[o],
            ts=orders.t[o],
            event=ORDER,
            revenue=orders.revenue[o],
            order_no=orders.number[o],
        )
    )
    return _concat(parts)


def _stage_change(
    cust: np.ndarray, ts: np.ndarray, from_stage: np.ndarray | int, to_stage: int, value: np.ndarray
) -> Rows:
    return _rows(
        cust.size,
        cust=cust,
        ts=ts,
        event=DEAL_STAGE,
        from_stage=from_stage,
        to_stage=to_stage,
        amount=value[cust],
    )


# ---- tables -------------------------------------------------------------------------------------


def _epoch_us(d: date) -> int:
    return (datetime(d.year, d.month, d.day) - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _timestamps(start: date, offsets: np.ndarray) -> pa.Array:
    return pa.array((_epoch_us(start) + offsets).astype("datetime64[us]"))


def _properties(rows: Rows, customer_ids: pa.Array) -> pa.Array:
    """The JSON properties of each event; keys only where they apply."""
    cust = customer_ids.take(pa.array(rows["cust"]))
    order_no = _numbers(rows["order_no"], rows["order_no"] < 0)
    deal = np.isin(rows["event"], (DEAL_STAGE, QUOTE_SENT))
    money = ~np.isnan(rows["revenue"]) | ~np.isnan(rows["amount"])
    fields = [
        ("page", _labels(rows["page"], PAGES)),
        ("path", _labels(rows["page"], PATHS)),
        ("utm_source", _labels(np.where(rows["channel"] == DIRECT, -1, rows["channel"]), CHANNELS)),
        ("utm_medium", _labels(rows["channel"], UTM_MEDIUM)),
        ("utm_campaign", _labels(rows["campaign"], CAMPAIGN_NAMES)),
        ("device", _labels(rows["device"], DEVICES)),
        (
            "order_id",
            pc.binary_join_element_wise("o-", cust, "-", pc.cast(order_no, pa.string()), ""),
        ),
        ("order_number", order_no),
        (
            "deal_id",
            pc.if_else(pa.array(deal), pc.binary_join_element_wise("deal-", cust, ""), None),
        ),
        ("from_stage", _labels(rows["from_stage"], DEAL_STAGES)),
        ("to_stage", _labels(rows["to_stage"], DEAL_STAGES)),
        ("amount", _numbers(rows["amount"], np.isnan(rows["amount"]))),
        ("currency", _labels(np.where(money, 0, -1), (CURRENCY,))),
        ("score", _numbers(rows["score"], rows["score"] < 0)),
        ("first_visit", _numbers(rows["first_visit"] == 1, rows["first_visit"] == 0)),
    ]
    for code, (key, vocab) in DETAILS.items():
        fields.append((key, _labels(np.where(rows["event"] == code, rows["detail"], -1), vocab)))
    return _json_objects(fields)


def _events_table(
    rows: Rows, s: _Sessions, seed: int, start: date, customer_ids: pa.Array
) -> pa.Table:
    """Rows (already cut at the end date and sorted by time) as an EVENT_SCHEMA table."""
    session_rank = np.empty(s.start.size, dtype=np.int64)
    session_rank[np.argsort(s.start, kind="stable")] = np.arange(s.start.size)
    session = rows["session"]
    session_ids = _prefixed(f"s{seed}-", _at(session_rank, session, 0), 7)
    columns = {
        "event_id": _prefixed(f"e{seed}-", np.arange(session.size), 8),
        "customer_id": customer_ids.take(pa.array(rows["cust"])),
        "event": _labels(rows["event"], EVENTS),
        "ts": _timestamps(start, rows["ts"]),
        "session_id": pc.if_else(pa.array(session >= 0), session_ids, None),
        "channel": _labels(rows["channel"], SESSION_CHANNELS),
        "campaign": _labels(rows["campaign"], CAMPAIGN_NAMES),
        "revenue": _numbers(rows["revenue"], np.isnan(rows["revenue"])),
        "properties": _properties(rows, customer_ids),
    }
    return pa.table(columns, schema=EVENT_SCHEMA)


def _customers_table(people: _People, rows: Rows, start: date, customer_ids: pa.Array) -> pa.Table:
    """Traits per customer: demographics, acquisition, and the day they signed up (if they did)."""
    n = people.t0.size
    signup_t = np.full(n, -1, dtype=np.int64)
    is_signup = rows["event"] == SIGNUP
    signup_t[rows["cust"][is_signup]] = rows["ts"][is_signup]
    fields = [("age", pa.array(people.age))]
    fields += [(name, _labels(codes, labels)) for name, (codes, labels) in people.traits.items()]
    fields += [
        ("acquisition_date", _day_text(start, people.t0, np.zeros(n, dtype=bool))),
        ("signup_date", _day_text(start, signup_t, signup_t < 0)),
    ]
    return pa.table(
        {"customer_id": customer_ids, "traits": _json_objects(fields)}, schema=CUSTOMER_SCHEMA
    )


def _day_text(start: date, offsets: np.ndarray, missing: np.ndarray) -> pa.Array:
    days = (_epoch_us(start) + offsets).astype("datetime64[us]").astype("datetime64[D]")
    return pc.cast(pa.array(days, mask=missing), pa.string())


def _spend_table(rng: np.random.Generator, people: _People, start: date, n_days: int) -> pa.Table:
    """Daily cost of every campaign: per visitor bought, a running base, and event-day costs.

    Fixed costs scale with the business so CAC looks alike for small and large demos.
    """
    scale = people.t0.size / 20_000
    day = people.t0 // DAY
    n_camp = len(CAMPAIGNS)
    visitors = np.bincount(people.campaign * n_days + day, minlength=n_camp * n_days)
    visitors = visitors.reshape(n_camp, n_days)
    weekday, season = _calendar(start, n_days)
    per_visitor = np.array([c.cost_per_visitor for c in CAMPAIGNS])[:, None]
    base = np.array([c.daily_base for c in CAMPAIGNS])[:, None] * season * scale
    events = np.array([c.event_cost * _scheduled(c, weekday) for c in CAMPAIGNS]) * scale
    shape = (n_camp, n_days)
    amount = (
        visitors * per_visitor * rng.lognormal(0, 0.2, shape)
        + base * rng.uniform(0.85, 1.15, shape)
        + events
    )
    camp, d = np.indices(shape).reshape(2, -1)
    days = np.datetime64(start, "D") + d
    return pa.table(
        {
            "day": pa.array(days),
            "channel": _labels(CAMPAIGN_CHANNEL[camp], CHANNELS),
            "campaign": _labels(camp, CAMPAIGN_NAMES),
            "amount": pa.array(np.round(amount.reshape(-1), 2)),
            "currency": pa.array([CURRENCY] * camp.size, pa.string()),
        },
        schema=SPEND_SCHEMA,
    )


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1) + timedelta(days=d.day - 1)


# ---- public API ---------------------------------------------------------------------------------


def generate(
    seed: int = 7, customers: int = 20_000, months: int = 6, start: date = date(2025, 1, 1)
) -> DemoData:
    """Generate a demo business: about 50 events per customer over ``months`` from ``start``.

    The same arguments always give identical tables. Journeys still running at the end are cut
    there, as in a real export.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if months < 1:
        raise ValueError("months must be at least 1")
    rng = np.random.default_rng(seed)
    end = _add_months(start, months)
    n_days = (end - start).days
    people = _people(rng, customers, start, n_days)
    level, times = _ladder(rng, people)
    # Checkouts draw from their own stream, so the rest of the business stays as it was.
    level, unpaid = _checkout(np.random.default_rng((seed, 1)), people, level, times)
    crm = _deal_times(rng, times)
    first = np.where(people.b2b, crm[:, 4] + 30 * MINUTE, times[:, PURCHASE])
    orders = _orders(rng, people, level, times, first)
    adv = _advocacy(rng, orders)
    s = _sessions(rng, people, level, times, first, orders, adv, unpaid)
    rows = _concat(
        [
            _session_rows(rng, people, s, level, times, orders, adv),
            _crm_rows(rng, people, level, crm, orders),
        ]
    )
    rows = _take(rows, np.flatnonzero(rows["ts"] < n_days * DAY))
    rows = _take(rows, np.lexsort((rows["pos"], rows["session"], rows["cust"], rows["ts"])))
    customer_ids = _prefixed("c", np.arange(1, customers + 1), 6)
    return DemoData(
        events=_events_table(rows, s, seed, start, customer_ids),
        customers=_customers_table(people, rows, start, customer_ids),
        spend=_spend_table(rng, people, start, n_days),
        start=start,
        end=end,
        seed=seed,
    )


def load(
    store: Store, data: DemoData, progress: bool = False, *, batch_rows: int = 100_000
) -> None:
    """Write the demo into a store, events in batches so memory stays flat and progress shows."""
    from rich.progress import track

    store.upsert_customers(data.customers)
    store.insert_spend(data.spend)
    batches = data.events.to_batches(max_chunksize=batch_rows)
    for batch in track(batches, description="Loading demo events", disable=not progress):
        store.insert_events(pa.Table.from_batches([batch], schema=data.events.schema))
