"""The golden cases: every CLI command with ``--json`` (or its CSV / YAML output where it has no
JSON), every HTTP analysis, KPI, segment and query route, and some bad input of each kind.

CLI arguments are written as one shell line; ``@demo``, ``@hand`` and ``@scratch`` stand for the
stores' files, ``@in/`` for the input folder and ``@out/`` for the output folder (see
:mod:`golden.inputs`). Cases of a group run in order, and some write (segments, templates,
imports, keys): later cases see what earlier ones saved.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from golden.inputs import CHECKOUT_SPEC, JOURNEY_SPEC, SALES_SPEC, SIGNUP_SPEC


@dataclass(frozen=True)
class Cli:
    """``loudou ARGS`` run in-process. ``out`` says how stdout is read (json, csv or text);
    ``files`` are output files (under ``@out/``) whose CSV rows are recorded too."""

    name: str
    args: tuple[str, ...]
    out: str = "json"
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Previous:
    """A value taken from an earlier case's JSON answer (e.g. a page cursor)."""

    case: str
    key: str


@dataclass(frozen=True)
class Http:
    """One request to the served demo. ``raw`` is sent as the body bytes instead of ``body``."""

    name: str
    method: str
    path: str
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    role: str | None = "read"
    raw: bytes | None = None


def cli(name: str, line: str, db: str = "demo", out: str = "json", *files: str) -> Cli:
    args = shlex.split(line)
    if db:
        args += ["--db", "@" + db]
    return Cli(name, tuple(args), out, files)


J, S, C, G, HS = (f"@in/{n}.yaml" for n in ("journey", "sales", "checkout", "signup", "hand"))
V3 = "--step view --step cart --step purchase --window 1d"  # the hand store's plain funnel

FUNNEL = [
    cli("journey", f"funnel {J} --json"),
    cli("sales", f"funnel {S} --json"),
    cli("checkout", f"funnel {C} --json"),
    cli("signup spec options", f"funnel {G} --json"),
    cli("journey by region", f"funnel {J} --breakdown region --json"),
    cli(
        "journey by event.device top 1",
        f"funnel {J} --breakdown event.device --breakdown-limit 1 --json",
    ),
    cli("checkout any_order totals", f"funnel {C} --mode any_order --count totals --json"),
    cli(
        "inline steps",
        "funnel --step 'page_view where page = pricing' --step 'signup|trial_start' "
        "--step 'order_completed where revenue >= 1000 and customer.segment = business' "
        "--window 30d --name inline --json",
    ),
    cli(
        "inline conditions",
        "funnel --step 'ad_click where campaign contains BRAND' "
        "--step 'page_view where page in (pricing, checkout)' "
        "--step 'order_completed where coupon is not set' --json",
    ),
    cli("hold and exclude", f"funnel {S} --hold deal_id --exclude deal_stage_changed:1-2 --json"),
    cli("journey csv", f"funnel {J} --csv --lang en", "demo", "csv"),
    cli("journey csv zh", f"funnel {C} --breakdown device --csv --lang zh", "demo", "csv"),
    # the hand store: one behaviour per customer
    cli("hand ordered", f"funnel {V3} --json", "hand"),
    cli("hand strict_order", f"funnel {V3} --mode strict_order --json", "hand"),
    cli("hand strict_increase", f"funnel {V3} --mode strict_increase --json", "hand"),
    cli("hand any_order", f"funnel {V3} --mode any_order --json", "hand"),
    cli("hand sessions", f"funnel {V3} --count sessions --json", "hand"),
    cli("hand totals", f"funnel {V3} --count totals --json", "hand"),
    cli(
        "hand totals strict_order", f"funnel {V3} --count totals --mode strict_order --json", "hand"
    ),
    cli("hand sessions any_order", f"funnel {V3} --count sessions --mode any_order --json", "hand"),
    cli("hand hold sku", f"funnel {V3} --hold sku --json", "hand"),
    cli("hand exclude refund", f"funnel {V3} --exclude refund:1-3 --window 30d --json", "hand"),
    cli("hand spec file", f"funnel {HS} --json", "hand"),
    cli("hand spec file any_order", f"funnel {HS} --mode any_order --json", "hand"),
    cli("hand by device", f"funnel {V3} --breakdown device --json", "hand"),
    cli("hand by region trait", f"funnel {V3} --breakdown customer.region --json", "hand"),
    cli("hand by plan top 1", f"funnel {V3} --breakdown plan --breakdown-limit 1 --json", "hand"),
    cli("hand by sku hold sku", f"funnel {V3} --breakdown sku --hold sku --json", "hand"),
    cli("hand february", f"funnel {V3} --from 2025-02-01 --to 2025-02-28 --json", "hand"),
    cli("hand window 2h", f"funnel {V3} --window 2h --json", "hand"),
    cli(
        "hand price >= 10",
        "funnel --step 'view where price >= 10' --step cart "
        "--step 'purchase where revenue > 20' --json",
        "hand",
    ),
    cli(
        "hand trait condition",
        "funnel --step 'view where customer.plan = pro' --step 'cart|purchase' --window 7d --json",
        "hand",
    ),
    cli("hand is set", "funnel --step 'view where device is set' --step purchase --json", "hand"),
    cli(
        "hand not in", "funnel --step 'view where sku not in (A, B)' --step purchase --json", "hand"
    ),
    cli("hand csv", f"funnel {V3} --breakdown customer.region --csv --lang en", "hand", "csv"),
    cli("hand empty store range", f"funnel {V3} --from 2026-01-01 --json", "hand"),
]

ANALYSIS = [
    cli("compare region", f"compare {J} --by region --json"),
    cli("compare device age bands", f"compare {J} --by device --by age:18,25,35,45,55 --json"),
    cli("compare cohort", f"compare {J} --by cohort --min-customers 5 --limit 3 --json"),
    cli("compare cohort of trait", f"compare {S} --by cohort:acquisition_date --json"),
    cli("compare checkout device", f"compare {C} --by device --by acquisition_channel --json"),
    cli("compare hand", f"compare {HS} --by region --min-customers 1 --json", "hand"),
    cli(
        "diagnose journey", f"diagnose {J} --by region --by device --by acquisition_channel --json"
    ),
    cli("diagnose checkout daily", f"diagnose {C} --by device --period day --json"),
    cli(
        "diagnose sales monthly",
        f"diagnose {S} --by region --period month --alpha 0.2 --limit 3 --json",
    ),
    cli("diagnose hand", f"diagnose {HS} --by region --min-customers 1 --json", "hand"),
    cli("trends journey week", f"trends {J} --json"),
    cli("trends checkout day", f"trends {C} --period day --json"),
    cli("trends csv", f"trends {C} --period month --csv", "demo", "csv"),
    cli("trends hand", f"trends {HS} --period day --json", "hand"),
    cli("time-to-convert journey", f"time-to-convert {J} --json"),
    cli(
        "time-to-convert steps 2-3",
        f"time-to-convert {J} --from-step 2 --to-step 3 --bins 5 --json",
    ),
    cli("time-to-convert hand", f"time-to-convert {HS} --bins 4 --json", "hand"),
    cli("customers dropped", f"customers {J} --step 2", "demo", "csv"),
    cli("customers converted", f"customers {J} --step 3 --outcome converted", "demo", "csv"),
    cli(
        "customers to file",
        f"customers {S} --step 4 -o @out/sales_step4.csv",
        "demo",
        "text",
        "sales_step4.csv",
    ),
    cli("customers hand", f"customers {HS} --step 1", "hand", "csv"),
    cli("transitions journey", f"transitions {J} --json"),
    cli("transitions hand", f"transitions {HS} --json", "hand"),
    cli("paths after signup", "paths --after signup --json"),
    cli(
        "paths between",
        "paths --after ad_click --before order_completed --depth 2 --exclude page_view --json",
    ),
    cli("paths before", "paths --before order_completed --limit 5 --json"),
    cli("paths hand", "paths --after view --json", "hand"),
    cli("paths hand between", "paths --after view --before purchase --keep-repeats --json", "hand"),
    cli("correlate journey", f"correlate {J} --step 2 --property page --min-customers 10 --json"),
    cli(
        "correlate checkout",
        f"correlate {C} --property device --property utm_source --top 3 --json",
    ),
    cli(
        "correlate hand",
        f"correlate {HS} --step 1 --property device --min-customers 1 --json",
        "hand",
    ),
]

SEGMENTS = [
    cli(
        "create east", "segments create east --trait 'region = East' --name-zh 华东", "demo", "text"
    ),
    cli(
        "create young",
        "segments create young --trait 'age < 25' --description 'under 25'",
        "demo",
        "text",
    ),
    cli("create best", "segments create best --rule '{rfm: [champions, loyal]}'", "demo", "text"),
    cli("create from file", "segments create --file @in/segments.yaml", "demo", "text"),
    cli("list", "segments list"),
    *(
        cli(f"show {n}", f"segments show {n} --json")
        for n in (
            "east",
            "best",
            "lapsed",
        )
    ),
    cli("export east", "segments export east", "demo", "csv"),
    cli(
        "export lapsed to file",
        "segments export lapsed -o @out/lapsed.csv",
        "demo",
        "text",
        "lapsed.csv",
    ),
    cli("funnel in segment", f"segments funnel {J} --segment east --json"),
    cli("funnel by segments", f"segments funnel {J} --by segments --json"),
    cli("funnel by rfm in segment", f"segments funnel {J} --segment east --by rfm --json"),
    cli(
        "funnel --segment and breakdown",
        f"funnel {J} --segment east --breakdown customer.region --json",
    ),
    cli("funnel breakdown segment list", f"funnel {J} --breakdown segment:east,best,lapsed --json"),
    cli("funnel breakdown rfm", f"funnel {J} --breakdown rfm --json"),
    cli("compare segments", f"compare {J} --by segments --json"),
    cli("compare rfm in segment", f"compare {J} --by rfm --segment east --min-customers 5 --json"),
    cli("compare segment list", f"compare {C} --by segment:east,young --json"),
    cli("trends in segment", f"trends {C} --period week --segment mid_south --json"),
    cli("delete young", "segments delete young", "demo", "text"),
    cli("list after delete", "segments list"),
]

KPI = [
    cli("attribution", "kpi attribution --json"),
    *(
        cli(f"attribution {m}", f"kpi attribution --model {m} --json")
        for m in ("first_touch", "last_touch", "position", "markov")
    ),
    cli("attribution by campaign", "kpi attribution --by campaign --model position --json"),
    cli(
        "attribution per segment",
        "kpi attribution --segment region --model markov --lookback 14d --json",
    ),
    cli(
        "attribution range",
        "kpi attribution --from 2025-02-01 --to 2025-03-31 --lookback 7d --json",
    ),
    cli("cac", "kpi cac --json"),
    cli("cac markov", "kpi cac --model markov --horizon 6 --lookback 14d --json"),
    cli("clv", "kpi clv --page-size 25 --json"),
    cli(
        "clv weekly by channel",
        "kpi clv --time-unit week --horizon 6 --discount 0.02 --by channel "
        "--page 2 --page-size 10 --json",
    ),
    cli(
        "clv monthly by segment",
        "kpi clv --time-unit month --observation-end 2025-03-31 --by segment --page-size 5 --json",
    ),
    cli(
        "clv to file",
        "kpi clv --by region -o @out/clv.csv --page-size 3 --json",
        "demo",
        "json",
        "clv.csv",
    ),
    cli("retention", "kpi retention --json"),
    cli("retention weekly purchase", "kpi retention --period week --basis purchase --json"),
    cli("repeat", "kpi repeat --json"),
    cli("repeat by segment", "kpi repeat --by segment --json"),
    cli("churn", "kpi churn --json"),
    cli("churn weekly activity", "kpi churn --period week --basis activity --json"),
    cli("churn-risk", "kpi churn-risk --json"),
    cli("churn-risk csv", "kpi churn-risk --csv", "demo", "csv"),
    cli(
        "churn-risk to file",
        "kpi churn-risk --observation-end 2025-04-15 --limit 0 -o @out/risk.csv --json",
        "demo",
        "json",
        "risk.csv",
    ),
    cli("nps", "kpi nps --json"),
    cli("nps by segment weekly", "kpi nps --by segment --period week --json"),
    cli("sales-cycle", "kpi sales-cycle --json"),
    cli("sales-cycle by channel", "kpi sales-cycle --by channel --json"),
    cli("summary", "kpi summary --json"),
]

MISC = [
    cli("templates list", "templates list --json", ""),
    cli(
        "templates map",
        "templates map customer 'awareness=ad_click|page_view' "
        "interest=content_download intent=trial_start purchase=order_completed",
        "demo",
        "text",
    ),
    cli("templates show", "templates show customer", "demo", "text"),
    cli("funnel from template", "funnel --template customer --window 30d --json"),
    cli("info demo", "info --json"),
    cli("info hand", "info --json", "hand"),
    cli(
        "import events csv",
        "import events @in/events.csv --map customer_id=user_id "
        "--map ts=timestamp --tz Asia/Shanghai --rejects @out/rejects.csv --json",
        "scratch",
        "json",
        "rejects.csv",
    ),
    cli(
        "import events again",
        "import events @in/events.csv --map customer_id=user_id "
        "--map ts=timestamp --tz Asia/Shanghai --rejects @out/rejects2.csv --json",
        "scratch",
    ),
    cli(
        "import events jsonl",
        "import events @in/events.jsonl --rejects @out/rejects3.csv --json",
        "scratch",
        "json",
        "rejects3.csv",
    ),
    cli(
        "import customers",
        "import customers @in/customers.csv --rejects @out/rejects4.csv --json",
        "scratch",
        "json",
        "rejects4.csv",
    ),
    cli("import spend", "import spend @in/spend.csv --rejects @out/rejects5.csv --json", "scratch"),
    cli("info scratch", "info --json", "scratch"),
    cli(
        "scratch funnel",
        "funnel --step view --step cart --step purchase --breakdown region --json",
        "scratch",
    ),
    cli(
        "scratch sessions",
        "funnel --step view --step cart --count sessions --breakdown utm_source --json",
        "scratch",
    ),
    cli("scratch customers", "customers @in/hand.yaml --step 1", "scratch", "csv"),
    cli("scratch cac", "kpi cac --model last_touch --ltv historical --json", "scratch"),
    cli("keys create", "keys create --role read --name golden --json", "scratch"),
    cli("keys list", "keys list --json", "scratch"),
]

ERRORS = [
    cli("funnel no steps", "funnel --json"),
    cli("funnel bad mode", "funnel --step view --mode sideways --json", "hand"),
    cli("funnel bad count", "funnel --step view --count visitors --json", "hand"),
    cli("funnel bad window", "funnel --step view --window 3x --json", "hand"),
    cli("funnel bad exclude", "funnel --step view --step cart --exclude refund --json", "hand"),
    cli(
        "funnel exclude out of range",
        "funnel --step view --step cart --exclude refund:1-5 --json",
        "hand",
    ),
    cli("funnel bad step", "funnel --step 'view where' --json", "hand"),
    cli("funnel bad operator", "funnel --step 'view where price ~ 3' --json", "hand"),
    cli("funnel bad date", f"funnel {V3} --from 2025-02-30 --json", "hand"),
    cli("funnel bad identifier", "funnel --step view --breakdown 'a b' --json", "hand"),
    cli("funnel spec and steps", f"funnel {HS} --step view --json", "hand"),
    cli("funnel missing spec file", "funnel @in/nowhere.yaml --json", "hand"),
    cli("funnel broken yaml", "funnel @in/broken.yaml --json", "hand"),
    cli("funnel empty steps", "funnel @in/empty_steps.yaml --json", "hand"),
    cli("funnel unknown template", "funnel --template nope --json"),
    cli("funnel unmapped template", "funnel --template sales --json"),
    cli("funnel unknown segment", f"funnel {J} --segment nowhere --json"),
    cli("funnel empty segment list", f"funnel {J} --breakdown segment: --json"),
    cli("funnel bad lang", f"funnel {V3} --lang fr", "hand"),
    cli("compare no by", f"compare {J} --json", "demo", "text"),
    cli("compare bad bands", f"compare {J} --by age:x,y --json"),
    cli(
        "compare min customers 0",
        f"compare {J} --by region --min-customers 0 --json",
        "demo",
        "text",
    ),
    cli("diagnose bad period", f"diagnose {J} --period year --json"),
    cli("diagnose bad alpha", f"diagnose {J} --alpha 2 --json"),
    cli("trends bad period", f"trends {J} --period hour --json"),
    cli("time-to-convert bad steps", f"time-to-convert {J} --from-step 3 --to-step 2 --json"),
    cli("customers bad step", f"customers {J} --step 9"),
    cli("customers bad outcome", f"customers {J} --step 1 --outcome maybe"),
    cli("correlate bad step", f"correlate {J} --step 5 --json"),
    cli("paths no anchor", "paths --json"),
    cli("segments show unknown", "segments show nowhere --json"),
    cli("segments create no rules", "segments create nothing", "demo", "text"),
    cli("segments create bad rule", "segments create bad --rule 'not: [yaml'", "demo", "text"),
    cli("segments create bad rfm", "segments create bad --rule '{rfm: [royalty]}'", "demo", "text"),
    cli("segments delete unknown", "segments delete nowhere", "demo", "text"),
    cli("segments funnel bad by", f"segments funnel {J} --by region --json"),
    cli("kpi bad model", "kpi attribution --model magic --json"),
    cli("kpi bad lookback", "kpi attribution --lookback soon --json"),
    cli("kpi bad date", "kpi cac --from 2025-13-01 --json"),
    cli("kpi bad ltv", "kpi cac --ltv magic --json"),
    cli("kpi bad time unit", "kpi clv --time-unit hour --json"),
    cli("kpi bad page size", "kpi clv --page-size 0 --json"),
    cli("kpi bad period", "kpi retention --period year --json"),
    cli("kpi bad basis", "kpi churn --basis mood --json"),
    cli("kpi bad p_alive", "kpi churn-risk --p-alive-below 0 --json"),
    cli("kpi bad limit", "kpi churn-risk --limit -1 --json"),
    cli("kpi bad nps period", "kpi nps --period decade --json"),
    cli("kpi bad lang", "kpi nps --lang fr"),
    cli("templates map unknown stage", "templates map customer wish=view", "demo", "text"),
    cli("templates show unknown", "templates show nope", "demo", "text"),
    cli("import bad format", "import events @in/bad.txt --json", "scratch"),
    cli("import bad map", "import events @in/events.csv --map customer_id --json", "scratch"),
    cli("import missing file", "import spend @in/nowhere.csv --json", "scratch"),
    cli("import bad tz", "import events @in/events.csv --tz Mars/Base --json", "scratch"),
    cli("keys bad role", "keys create --role boss --json", "scratch"),
    cli("keys revoke unknown", "keys revoke nope", "scratch", "text"),
    cli("usage unknown option", "funnel --bins 3 --json", "hand", "text"),
    cli("usage bad integer", "kpi clv --horizon soon --json", "demo", "text"),
    cli("usage unknown command", "funnels --json", "", "text"),
]


# ---- HTTP --------------------------------------------------------------------------------------


def post(name: str, path: str, body: Any, role: str | None = "read") -> Http:
    return Http(name, "POST", path, body=body, role=role)


def get(name: str, path: str, role: str | None = "read", **params: Any) -> Http:
    return Http(name, "GET", path, params=params, role=role)


J_, S_, C_ = JOURNEY_SPEC, SALES_SPEC, CHECKOUT_SPEC
TEMPLATE = {
    "template": "journey",
    "stages": {
        "awareness": "page_view",
        "consideration": "signup|demo_request",
        "conversion": "order_completed",
    },
    "window": "60d",
}

HTTP_QUERY = [
    get("health", "/v1/health", None),
    post("funnel journey", "/v1/funnels/query", J_),
    post("funnel signup spec options", "/v1/funnels/query", SIGNUP_SPEC),
    post("funnel breakdown", "/v1/funnels/query", {**C_, "breakdown": "device", "count": "totals"}),
    post("funnel template", "/v1/funnels/query", TEMPLATE),
    post("funnel admin key", "/v1/funnels/query", C_, "admin"),
    get("customer", "/v1/customers/c000007", limit=5),
    get("customer page 2", "/v1/customers/c000007", limit=5, cursor=Previous("customer", "next")),
    get("customer unknown", "/v1/customers/nobody"),
    get("events orders", "/v1/events", event="order_completed", limit=5),
    get(
        "events page 2",
        "/v1/events",
        event="order_completed",
        limit=5,
        cursor=Previous("events orders", "next"),
    ),
    get("events two kinds", "/v1/events", event=["nps_submitted", "referral_sent"], limit=4),
    get(
        "events of a customer",
        "/v1/events",
        customer_id="c000042",
        since="2025-02-01T00:00:00Z",
        until="2025-03-01T00:00:00",
        limit=10,
    ),
    get("events bad cursor", "/v1/events", cursor="bm90IGEgY3Vyc29y"),
    get("events bad limit", "/v1/events", limit=5000),
    post("funnel empty steps", "/v1/funnels/query", {"steps": []}),
    post("funnel bad mode", "/v1/funnels/query", {**C_, "mode": "sideways"}),
    post("funnel not an object", "/v1/funnels/query", ["page_view"]),
    Http("funnel invalid json", "POST", "/v1/funnels/query", raw=b"{steps: nope"),
    post("funnel write key", "/v1/funnels/query", C_, "write"),
    post("funnel no key", "/v1/funnels/query", C_, None),
    get("keys", "/v1/keys", "admin"),
    get("keys read key", "/v1/keys", "read"),
]

HTTP_SEGMENTS = [
    post(
        "create east",
        "/v1/segments",
        {"name": "east", "name_zh": "华东", "rules": [{"trait": "region", "value": "East"}]},
        "admin",
    ),
    post(
        "create best",
        "/v1/segments",
        {"name": "best", "rules": [{"rfm": ["champions", "loyal"]}]},
        "admin",
    ),
    post(
        "create short_lived",
        "/v1/segments",
        {
            "name": "short_lived",
            "description": "x",
            "rules": [{"trait": "age", "op": "<", "value": 25}],
        },
        "admin",
    ),
    post("create read key", "/v1/segments", {"name": "x", "rules": []}, "read"),
    post("create bad rfm", "/v1/segments", {"name": "x", "rules": [{"rfm": ["royalty"]}]}, "admin"),
    post("create nameless", "/v1/segments", {"rules": []}, "admin"),
    get("list", "/v1/segments"),
    get("show east", "/v1/segments/east"),
    get("show best", "/v1/segments/best"),
    get("show unknown", "/v1/segments/nowhere"),
    get("list unknown parameter", "/v1/segments", verbose=1),
    get("export east", "/v1/segments/east/export"),
    get("export unknown", "/v1/segments/nowhere/export"),
    post("funnel in segment", "/v1/segments/funnel", {"spec": J_, "segment": "east"}),
    post("funnel by segments", "/v1/segments/funnel", {"spec": J_, "by": "segments"}),
    post(
        "funnel by rfm in segment",
        "/v1/segments/funnel",
        {"spec": J_, "segment": "east", "by": "rfm"},
    ),
    post("funnel bad by", "/v1/segments/funnel", {"spec": J_, "by": "region"}),
    Http("delete read key", "DELETE", "/v1/segments/short_lived"),
    Http("delete", "DELETE", "/v1/segments/short_lived", role="admin"),
    Http("delete again", "DELETE", "/v1/segments/short_lived", role="admin"),
    get("list after delete", "/v1/segments"),
]

HTTP_ANALYSIS = [
    post("compare", "/v1/funnels/compare", {"spec": J_, "by": ["region", "segments"]}),
    post(
        "compare in segment",
        "/v1/funnels/compare",
        {"spec": J_, "by": ["device"], "segment": "east", "min_customers": 5, "limit": 2},
    ),
    post("diagnose", "/v1/funnels/diagnose", {"spec": J_, "by": ["region", "device"]}),
    post(
        "diagnose month",
        "/v1/funnels/diagnose",
        {"spec": S_, "period": "month", "alpha": 0.2, "limit": 3},
    ),
    post(
        "trends day in segment",
        "/v1/funnels/trends",
        {"spec": C_, "period": "day", "segment": "east"},
    ),
    post(
        "time-to-convert 2-3",
        "/v1/funnels/time-to-convert",
        {"spec": J_, "from_step": 2, "to_step": 3, "bins": 5},
    ),
    post(
        "customers page", "/v1/funnels/customers", {"spec": J_, "step": 2, "offset": 10, "limit": 7}
    ),
    post(
        "customers csv",
        "/v1/funnels/customers",
        {"spec": S_, "step": 4, "format": "csv", "limit": 3},
    ),
    post(
        "customers in segment",
        "/v1/funnels/customers",
        {"spec": J_, "step": 1, "segment": "best", "outcome": "converted"},
    ),
    post("transitions", "/v1/funnels/transitions", {"spec": J_}),
    post(
        "correlate checkout",
        "/v1/funnels/correlate",
        {"spec": C_, "properties": ["device"], "top": 3, "segment": "east", "min_customers": 5},
    ),
    post(
        "paths between",
        "/v1/paths",
        {"after": "ad_click", "before": "order_completed", "depth": 2, "exclude": ["page_view"]},
    ),
    post(
        "paths before keep repeats",
        "/v1/paths",
        {"before": "order_completed", "keep_repeats": True, "limit": 4},
    ),
    post("compare no by", "/v1/funnels/compare", {"spec": J_}),
    post(
        "compare min_customers 0",
        "/v1/funnels/compare",
        {"spec": J_, "by": ["region"], "min_customers": 0},
    ),
    post("compare unknown field", "/v1/funnels/compare", {"spec": J_, "by": ["region"], "bye": 1}),
    post("compare unknown segment", "/v1/funnels/compare", {"spec": J_, "by": ["segment:nope"]}),
    post("compare empty steps", "/v1/funnels/compare", {"spec": {"steps": []}, "by": ["region"]}),
    post("diagnose bad alpha", "/v1/funnels/diagnose", {"spec": J_, "alpha": 2}),
    post("diagnose bad period", "/v1/funnels/diagnose", {"spec": J_, "period": "year"}),
    post("trends unknown segment", "/v1/funnels/trends", {"spec": J_, "segment": "nope"}),
    post("trends no spec", "/v1/funnels/trends", {"period": "week"}),
    post(
        "time-to-convert bad steps",
        "/v1/funnels/time-to-convert",
        {"spec": J_, "from_step": 3, "to_step": 2},
    ),
    post("customers bad step", "/v1/funnels/customers", {"spec": J_, "step": 9}),
    post(
        "customers bad outcome",
        "/v1/funnels/customers",
        {"spec": J_, "step": 1, "outcome": "maybe"},
    ),
    post("correlate bad step", "/v1/funnels/correlate", {"spec": J_, "step": 0}),
    post("transitions spec text", "/v1/funnels/transitions", {"spec": "view"}),
    post("paths no anchor", "/v1/paths", {"depth": 2}),
    post("paths bad depth", "/v1/paths", {"after": "signup", "depth": 0}),
    Http("trends invalid json", "POST", "/v1/funnels/trends", raw=b"{not json"),
    post("trends body a list", "/v1/funnels/trends", [J_]),
    post("trends write key", "/v1/funnels/trends", {"spec": J_}, "write"),
    post("trends no key", "/v1/funnels/trends", {"spec": J_}, None),
]

HTTP_KPI = [
    get(
        "attribution markov per segment",
        "/v1/kpi/attribution",
        model="markov",
        lookback="14d",
        segment="region",
    ),
    get(
        "attribution time_decay campaign",
        "/v1/kpi/attribution",
        model="time_decay",
        half_life="2d",
        by="campaign",
        **{"from": "2025-01-01"},
    ),
    get(
        "cac linear historical",
        "/v1/kpi/cac",
        model="linear",
        ltv="historical",
        margin=0.5,
        **{"from": "2025-01-01", "to": "2025-01-31"},
    ),
    get(
        "clv weekly by channel",
        "/v1/kpi/clv",
        time_unit="week",
        horizon=6,
        discount=0.02,
        by="channel",
        page=2,
        page_size=10,
    ),
    get("retention weekly purchase", "/v1/kpi/retention", period="week", basis="purchase"),
    get("repeat by segment", "/v1/kpi/repeat", by="segment", **{"from": "2025-02-01"}),
    get("churn weekly activity", "/v1/kpi/churn", period="week", basis="activity"),
    get("churn-risk inactive", "/v1/kpi/churn-risk", inactive_days=10, by="segment", limit=5),
    get("churn-risk csv", "/v1/kpi/churn-risk", format="csv", p_alive_below=0.3),
    get("nps by segment weekly", "/v1/kpi/nps", by="segment", period="week"),
    get("sales-cycle by channel", "/v1/kpi/sales-cycle", by="channel", **{"to": "2025-03-31"}),
    get("summary range", "/v1/kpi/summary", **{"from": "2025-02-01", "to": "2025-03-31"}),
    get("unknown parameter", "/v1/kpi/clv", timeunit="week"),
    get("bad p_alive_below", "/v1/kpi/churn-risk", p_alive_below=0),
    get("bad model", "/v1/kpi/attribution", model="magic"),
    get("bad date", "/v1/kpi/cac", **{"from": "2025-13-01"}),
    get("bad page_size", "/v1/kpi/clv", page_size=0),
    get("bad period", "/v1/kpi/retention", period="year"),
    get("write key", "/v1/kpi/summary", "write"),
    get("no key", "/v1/kpi/summary", None),
]

# Last: the only cases that store events (tracking), then read them back.
HTTP_TRACKING = [
    post("track missing id", "/v1/track", {"event": "Signed Up"}, "write"),
    post(
        "track bad timestamp",
        "/v1/track",
        {"userId": "g1", "event": "x", "timestamp": "yesterday"},
        "write",
    ),
    post("track read key", "/v1/track", {"userId": "g1", "event": "x"}, "read"),
    post(
        "track",
        "/v1/track",
        {
            "userId": "golden_1",
            "event": "Signed Up",
            "messageId": "golden-m1",
            "timestamp": "2025-04-30T12:00:00Z",
            "properties": {"plan": "pro", "revenue": 12.5},
            "context": {"ip": "10.0.0.1", "campaign": {"source": "search", "name": "brand"}},
        },
        "write",
    ),
    post(
        "batch",
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "page",
                    "anonymousId": "anon_1",
                    "name": "Home",
                    "messageId": "golden-m2",
                    "timestamp": "2025-04-30T11:00:00Z",
                    "properties": {"url": "https://x.test/?utm_source=email"},
                },
                {
                    "type": "identify",
                    "userId": "golden_1",
                    "anonymousId": "anon_1",
                    "messageId": "golden-m3",
                    "timestamp": "2025-04-30T11:30:00Z",
                    "traits": {"region": "East"},
                },
                {"type": "track", "event": "no id", "messageId": "golden-m4"},
            ]
        },
        "write",
    ),
    post(
        "track duplicate",
        "/v1/track",
        {
            "userId": "golden_1",
            "event": "Signed Up",
            "messageId": "golden-m1",
            "timestamp": "2025-04-30T12:00:00Z",
        },
        "write",
    ),
    get("tracked customer", "/v1/customers/golden_1"),
    get("tracked by anonymous id", "/v1/customers/anon_1"),
    get("tracked events", "/v1/events", customer_id="golden_1"),
]

CLI_GROUPS: dict[str, list[Cli]] = {
    "cli_funnel": FUNNEL,
    "cli_analysis": ANALYSIS,
    "cli_segments": SEGMENTS,
    "cli_kpi": KPI,
    "cli_misc": MISC,
    "cli_errors": ERRORS,
}
HTTP_GROUPS: dict[str, list[Http]] = {
    "http_query": HTTP_QUERY,
    "http_segments": HTTP_SEGMENTS,
    "http_analysis": HTTP_ANALYSIS,
    "http_kpi": HTTP_KPI,
    "http_tracking": HTTP_TRACKING,
}
