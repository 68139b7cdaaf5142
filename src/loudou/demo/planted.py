"""The effects planted in the demo business, which analyses must find: weak segments
(:data:`PLANTED_EFFECTS`), a payment outage (:data:`PLANTED_PERIODS`) and deals sent back
(:data:`PLANTED_LOOPS`). The generator plants them; the tests and ``loudou demo`` check that
compare and diagnose find them, so this module is the demo's answer key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlantedEffect:
    """A segment made to convert differently at one stage, so analyses can be checked.

    ``funnel`` and ``step`` say where it shows: the step (0-based) of :func:`journey_funnel_spec`
    or :func:`sales_funnel_spec` whose conversion from the previous step is multiplied.
    """

    trait: str
    value: str
    stage: str
    factor: float
    funnel: str
    step: int


PLANTED_EFFECTS = (
    PlantedEffect("device", "mobile", "consideration", 0.6, "journey", 1),
    PlantedEffect("acquisition_channel", "social", "purchase", 0.4, "journey", 2),
    PlantedEffect("age_band", "18-24", "repeat", 0.4, "journey", 3),
    PlantedEffect("region", "West", "intent", 0.45, "sales", 2),
    PlantedEffect("acquisition_channel", "referral", "consideration", 1.3, "sales", 1),
)


@dataclass(frozen=True)
class PlantedPeriod:
    """An outage: for ``days`` from ``first_day`` (days after the demo's start), customers with the
    trait value reach ``stage`` with ``factor`` times the usual chance, if they would reach it then.

    It is a web fault, so only consumers (who buy online) are hit; the ones it stops give up.
    ``funnel`` and ``step`` (0-based) say where it shows, as for :class:`PlantedEffect`; that
    funnel's step 1 happens on the day of the failure, so the outage days are the bad period.
    """

    trait: str
    value: str
    stage: str
    first_day: int
    days: int
    factor: float
    funnel: str
    step: int


# Nine in ten payments fail on mobile for three weeks from Monday 10 March (the default start).
PLANTED_PERIODS = (PlantedPeriod("device", "mobile", "purchase", 68, 21, 0.1, "checkout", 1),)


@dataclass(frozen=True)
class PlantedLoop:
    """Deals sent back from one sales stage to an earlier one, then moved forward again.

    ``share`` of the deals that go on to negotiate make the detour; no other stage goes back.
    """

    stage: str
    back_to: str
    share: float
    funnel: str = "sales"


PLANTED_LOOPS = (PlantedLoop("intent", "qualified", 0.2),)

# Consumers who get as far as buying but do not: this share still opens the checkout and leaves.
CHECKOUT_ABANDON = 0.7


def planted_traits() -> list[str]:
    """The traits of the planted segments and periods: what to compare and diagnose by."""
    effects: list[PlantedEffect | PlantedPeriod] = [*PLANTED_EFFECTS, *PLANTED_PERIODS]
    return list(dict.fromkeys(e.trait for e in effects))
