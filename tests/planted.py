"""Random journeys with known, planted effects (a weak segment, a bad week, a loop) for compare
and diagnose tests. Also returns each customer's true level so counts can be checked directly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

import loudou

from journeys import events_table, make_store, spec_of

START = datetime(2025, 1, 6)  # a Monday
STEPS = ["view", "cart", "checkout", "purchase"]
BASE = (0.6, 0.5, 0.7)  # transition probabilities view->cart, cart->checkout, checkout->purchase
DEVICES = ("desktop", "mobile", "tablet")


@dataclass
class Plant:
    customers: int = 2000
    weeks: int = 10
    weak_device: str | None = None  # converts at weak_factor x at transition weak_step
    weak_step: int = 2
    weak_factor: float = 0.6
    bad_week: int | None = None  # 0-based week whose customers convert worse at bad_step
    bad_step: int = 3
    bad_factor: float = 0.4
    bad_device: str | None = None  # the bad week hits only this device (one platform broken)
    loop_stage: int | None = None  # 1-based stage from which customers often go back one stage
    loop_p: float = 0.6
    back_p: float = 0.05  # everyone's chance of one step back at each stage >= 2
    seed: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    device: dict[str, str] = field(default_factory=dict)
    journeys: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def build(plant: Plant, path: str | None = None) -> tuple[Any, Any]:
    """(store, spec) of the planted business (in memory, or in the file ``path``);
    plant.levels and plant.device get each customer's truth."""
    rng = np.random.default_rng(plant.seed)
    journeys: dict[str, list[tuple[Any, ...]]] = {}
    traits: dict[str, dict[str, Any]] = {}
    for i in range(plant.customers):
        cid = f"c{i:05d}"
        device = DEVICES[rng.integers(3)]
        week = int(rng.integers(plant.weeks))
        t = START + timedelta(days=7 * week + float(rng.uniform(0, 7)))
        level = 1
        for k, p in enumerate(BASE, start=1):
            if device == plant.weak_device and k == plant.weak_step:
                p *= plant.weak_factor
            hit = plant.bad_device in (None, device)
            if week == plant.bad_week and k == plant.bad_step and hit:
                p *= plant.bad_factor
            if rng.random() >= p:
                break
            level += 1
        events: list[tuple[Any, ...]] = []
        for s in range(1, level + 1):
            events.append((STEPS[s - 1], t))
            t += timedelta(minutes=30)
            back = plant.loop_p if s == plant.loop_stage else plant.back_p
            if s >= 2 and rng.random() < back:
                events.append((STEPS[s - 2], t))  # go back one stage, then return
                events.append((STEPS[s - 1], t + timedelta(minutes=5)))
                t += timedelta(minutes=30)
        journeys[cid] = [(e, ts.isoformat(sep=" ")) for e, ts in events]
        traits[cid] = {"device": device}
        plant.levels[cid] = level
        plant.device[cid] = device
    plant.journeys = journeys
    spec = spec_of(STEPS, window="7d")
    if path is None:
        return make_store(journeys, traits), spec
    store = loudou.connect(path)
    store.insert_events(events_table(journeys))
    rows = {"customer_id": list(traits), "traits": [json.dumps(v) for v in traits.values()]}
    store.upsert_customers(pa.table(rows))
    return store, spec
