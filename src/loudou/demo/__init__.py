"""A synthetic business to try loudou on (``loudou demo``), in three parts: the generator of its
customers, journeys and spend (:mod:`.generator`), the effects planted in it for analyses to find
(:mod:`.planted`, the answer key of the tests), and its funnels (:mod:`.specs`)."""

from __future__ import annotations

from loudou.demo.generator import (
    AGE_BANDS,
    CAMPAIGNS,
    CHANNELS,
    DEAL_STAGES,
    DEVICES,
    LOST,
    DemoData,
    generate,
    load,
)
from loudou.demo.planted import (
    PLANTED_EFFECTS,
    PLANTED_LOOPS,
    PLANTED_PERIODS,
    PlantedEffect,
    PlantedLoop,
    PlantedPeriod,
    planted_traits,
)
from loudou.demo.specs import (
    checkout_funnel_spec,
    diagnoses,
    funnel_specs,
    journey_funnel_spec,
    sales_funnel_spec,
)

__all__ = [
    "AGE_BANDS",
    "CAMPAIGNS",
    "CHANNELS",
    "DEAL_STAGES",
    "DEVICES",
    "LOST",
    "PLANTED_EFFECTS",
    "PLANTED_LOOPS",
    "PLANTED_PERIODS",
    "DemoData",
    "PlantedEffect",
    "PlantedLoop",
    "PlantedPeriod",
    "checkout_funnel_spec",
    "diagnoses",
    "funnel_specs",
    "generate",
    "journey_funnel_spec",
    "load",
    "planted_traits",
    "sales_funnel_spec",
]
