"""The demo's funnels (customer journey, sales pipeline, web checkout) and what ``loudou demo``
diagnoses on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loudou.demo.generator import DEAL_STAGES, LOST
from loudou.demo.planted import planted_traits
from loudou.model.spec import FunnelSpec

if TYPE_CHECKING:
    from loudou.analyses.diagnose import Diagnosis
    from loudou.backends.base import Store


def _step(
    name: str, name_zh: str, event: str, key: str | None = None, value: object = None, op: str = "="
) -> dict[str, object]:
    """A funnel step dict, with at most one property condition."""
    where = [] if key is None else [{"property": key, "op": op, "value": value}]
    return {"name": name, "name_zh": name_zh, "event": event, "where": where}


def journey_funnel_spec() -> FunnelSpec:
    """The customer-journey funnel (客户旅程漏斗): first visit to referral.

    Conversion is the first order and Retention a later one, so one order never fills both steps
    and the time between them is real. The window is long because B2B journeys take months.
    """
    steps = [
        _step("Awareness", "认知", "page_view", "first_visit", True),
        _step("Consideration", "考虑", "page_view", "page", "pricing"),
        _step("Conversion", "转化", "order_completed", "order_number", 1),
        _step("Retention", "留存", "order_completed", "order_number", 2, ">="),
        _step("Advocacy", "推荐", "referral_sent"),
    ]
    return FunnelSpec.parse(
        {"name": "Customer journey", "name_zh": "客户旅程漏斗", "window": "180d", "steps": steps}
    )


def sales_funnel_spec() -> FunnelSpec:
    """The sales funnel (销售漏斗) over CRM deal stage changes of business customers."""
    labels = [("Lead", "潜在客户"), ("Qualified", "资格评定"), ("Intent", "意向客户")]
    labels += [("Negotiation", "谈判"), ("Won", "成交")]
    steps = [
        _step(name, name_zh, "deal_stage_changed", "to_stage", stage)
        for (name, name_zh), stage in zip(labels, DEAL_STAGES[:LOST], strict=True)
    ]
    return FunnelSpec.parse(
        {"name": "Sales pipeline", "name_zh": "销售漏斗", "window": "120d", "steps": steps}
    )


def checkout_funnel_spec() -> FunnelSpec:
    """The web checkout (网上结账): the checkout page, then the order. Consumers pay online
    (businesses through sales). The window is a day, so nearly all of the history has settled
    and a payment outage shows as bad step-1 days (see :data:`PLANTED_PERIODS`)."""
    steps = [
        _step("Checkout", "结账", "page_view", "page", "checkout"),
        _step("Payment", "支付成功", "order_completed"),
    ]
    return FunnelSpec.parse(
        {"name": "Web checkout", "name_zh": "网上结账", "window": "1d", "steps": steps}
    )


def funnel_specs() -> dict[str, FunnelSpec]:
    """The demo's funnels by the names planted effects use (``PlantedEffect.funnel``)."""
    return {
        "journey": journey_funnel_spec(),
        "sales": sales_funnel_spec(),
        "checkout": checkout_funnel_spec(),
    }


def diagnoses(store: Store, limit: int = 5) -> dict[str, Diagnosis]:
    """What ``loudou demo`` prints: the top findings of each demo funnel by the planted traits
    (the planted segments, the mobile payment outage and the deals sent back show among them)."""
    from loudou.analyses.diagnose import diagnose

    traits = planted_traits()
    return {
        name: diagnose(store, spec, traits, limit=limit) for name, spec in funnel_specs().items()
    }
