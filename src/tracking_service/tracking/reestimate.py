"""The tracking pipeline's re-estimate: the estimator's public re-estimate for a tracked parcel.

Once the carrier has a parcel, the window is the one the backtest measures at hand-off: the
history snapshot's `OptionHistories.reestimate` for the order's option, the zone of the rules
its destination falls in, and its lane, from the hand-off (or a later scan that still shows it
on its way). No logic is copied from the estimator: this module only finds the option, zone,
lane and time zones an order's row names. When the history has no model for the option there
(or gives the parcel no chance left), the rules' window counted from the hand-off day stands in,
no earlier than the day of the last scan at the destination (a parcel seen in transit that
day was not delivered before it). An order the rules cannot place (an option or origin the
rules no longer have, a destination no zone serves) gets None: the pipeline keeps the carrier's
date or the promise.

The carrier's own date, when it gives one, wins over this (a rule of `tracking.plan`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from tracking_service.estimator.calendar import roll_forward
from tracking_service.estimator.estimate import (
    Destination,
    EstimateInputError,
    Estimator,
    delivery_window,
    lane_query,
)
from tracking_service.estimator.option_history import OptionHistories
from tracking_service.estimator.zones import served_zone
from tracking_service.timezones import zone
from tracking_service.tracking.state import Estimate
from tracking_service.tracking.store import destination_zone


class Reestimates:
    """Re-estimates for tracked parcels on the current history snapshot (`history()` is read on
    every call: the runtime swaps its snapshot whole, so a call sees one snapshot)."""

    def __init__(self, estimator: Estimator, history: Callable[[], OptionHistories]) -> None:
        self.estimator = estimator
        self.history = history

    def __call__(
        self, order: Mapping[str, Any], handoff: datetime, last_scan: datetime | None
    ) -> Estimate | None:
        rules = self.estimator.rules
        option = next((o for o in rules.shipping_options if o.code == order["option"]), None)
        origin = rules.origin(order["origin"])
        if option is None or origin is None:
            return None
        try:
            dest = self.estimator.resolve(
                Destination(
                    order["dest_country"], order["dest_postal_code"], order["dest_subdivision"]
                )
            )
        except EstimateInputError:
            return None
        zone_id = served_zone(option, {z: i for i, z in enumerate(dest.zones)})
        if zone_id is None:
            return None
        dest_tz = destination_zone(dest.country, dest.subdivision)
        confidence = order["promise_confidence"]
        if not 0 < confidence < 1:
            confidence = option.confidence
        query = lane_query(origin, dest)
        history = self.history()
        # the window depends on the instants only through their local days (the hand-off's
        # at the origin, the scan's at the destination): parcels of one lane share it
        key = (
            "reestimate",
            option.code,
            zone_id,
            query,
            handoff.astimezone(zone(origin.time_zone)).date(),
            None if last_scan is None else last_scan.astimezone(zone(dest_tz or "UTC")).date(),
            confidence,
            dest_tz,
        )
        window = history.memo(
            key,
            lambda: history.reestimate(
                option.code,
                zone_id,
                query,
                handoff=handoff,
                confidence=confidence,
                last_scan=last_scan,
                origin_tz=origin.time_zone,
                dest_tz=dest_tz,
            ),
        )
        if window is not None:
            return Estimate(window.earliest, window.latest, "history")
        transit = next(t for t in option.transit if t.zone == zone_id)
        ship = roll_forward(
            self.estimator.origin_calendar(origin.id),
            handoff.astimezone(zone(origin.time_zone)).date(),
        )
        delivery = self.estimator.delivery_calendar(option.code, dest.country, dest.subdivision)
        earliest, latest = delivery_window(ship, transit.min, transit.max, delivery)
        if last_scan is not None:
            seen: date = last_scan.astimezone(zone(dest_tz or "UTC")).date()
            earliest = max(earliest, seen)
            latest = max(latest, earliest)
        return Estimate(earliest, latest, "rules")
