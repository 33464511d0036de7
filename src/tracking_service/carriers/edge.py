"""What every HTTP carrier adapter does at its edge, written once.

`HttpCarrierAdapter.track` normalizes and de-duplicates the numbers, answers malformed ones
locally (`invalid_number`, no quota spent), splits the rest into batches of `max_batch`, runs
the batches concurrently (the carrier's `CarrierHttp` enforces its limits) and turns every
exception into typed failures, so one number or one batch never fails the others.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence

from tracking_service.carriers.base import (
    FailureKind,
    TrackingFailure,
    TrackingOutcome,
    normalize_number,
)
from tracking_service.carriers.http import CarrierCallError, CarrierHttp
from tracking_service.carriers.numbers import CheckDigit, formats, match_format
from tracking_service.carriers.parse_support import fail_all

log = logging.getLogger(__name__)


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), max(1, size))]


class HttpCarrierAdapter:
    """Base of the real adapters: subclasses implement `_track_batch` and either set
    `number_format` (with `number_format_reason`) or override `invalid_reason`."""

    code: str = ""
    max_batch: int = 1
    number_format: re.Pattern[str] | None = None  # every number the carrier accepts, in full
    number_format_reason: str = ""  # the failure message of a number that does not match
    # The carrier (as named in `carriers.numbers`) whose formats' check digits are enforced: a
    # number that fits some of them, each with a wrong check digit, is refused locally.
    check_digit_carrier: str | None = None

    def __init__(self, http: CarrierHttp) -> None:
        self.http = http

    @classmethod
    def invalid_reason(cls, number: str) -> str | None:
        """Why the carrier would reject `number` (normalized) outright, or None. A class method:
        a carrier that is not configured checks numbers the same way."""
        if cls.number_format is not None and not cls.number_format.fullmatch(number):
            return cls.number_format_reason
        if cls.check_digit_carrier is not None:
            found = [
                match
                for fmt in formats()
                if fmt.carrier == cls.check_digit_carrier
                and (match := match_format(number, fmt)) is not None
            ]
            if found and all(m.check_digit is CheckDigit.INVALID for m in found):
                return f"{found[0].format_name} tracking number with a wrong check digit"
        return None

    async def _track_batch(self, numbers: list[str]) -> Mapping[str, TrackingOutcome]:
        raise NotImplementedError

    async def _track_one_by_one(self, numbers: list[str]) -> dict[str, TrackingOutcome]:
        """Each number in a batch of its own, concurrently: after a carrier refused a whole
        batch (HTTP 400), so that one bad number fails alone."""
        outcomes: dict[str, TrackingOutcome] = {}
        for answer in await asyncio.gather(*(self._track_batch([n]) for n in numbers)):
            outcomes.update(answer)
        return outcomes

    async def _guarded_batch(self, numbers: list[str]) -> dict[str, TrackingOutcome]:
        try:
            outcomes = dict(await self._track_batch(numbers))
        except CarrierCallError as exc:
            log.warning("%s: %s (%d numbers)", self.code, exc.message, len(numbers))
            return fail_all(self.code, numbers, exc.kind, exc.message, exc.retry_after)
        except Exception as exc:  # the edge: nothing escapes an adapter
            log.exception("%s: unexpected error tracking %s", self.code, numbers)
            return fail_all(
                self.code,
                numbers,
                FailureKind.UNAVAILABLE,
                f"{self.code}: unexpected error ({type(exc).__name__}: {exc})",
            )
        for n in numbers:  # a parser that skipped a number must not lose it
            if n not in outcomes:
                outcomes[n] = TrackingFailure(
                    self.code, n, FailureKind.BAD_RESPONSE, "the answer did not mention it"
                )
        return {n: outcomes[n] for n in numbers}

    async def track(self, numbers: Sequence[str]) -> Mapping[str, TrackingOutcome]:
        """One outcome per given number (keyed as given); never raises."""
        try:
            sent: dict[str, str] = {n: normalize_number(n) for n in numbers}
            outcomes: dict[str, TrackingOutcome] = {}
            to_ask: list[str] = []
            for n in dict.fromkeys(sent.values()):
                reason = self.invalid_reason(n)
                if reason is None:
                    to_ask.append(n)
                else:
                    outcomes[n] = TrackingFailure(self.code, n, FailureKind.INVALID_NUMBER, reason)
            batches = chunked(to_ask, self.max_batch)
            for answer in await asyncio.gather(*(self._guarded_batch(b) for b in batches)):
                outcomes.update(answer)
            return {given: outcomes[n] for given, n in sent.items()}
        except Exception as exc:  # pragma: no cover - belt and braces
            log.exception("%s: track failed", self.code)
            return fail_all(
                self.code, numbers, FailureKind.UNAVAILABLE, f"{self.code}: internal error: {exc}"
            )

    async def aclose(self) -> None:
        await self.http.aclose()


class NotConfiguredCarrier:
    """A carrier without credentials: nothing is called. A number the carrier would refuse
    outright is `invalid_number` (checked as its adapter would), every other `not_configured`:
    the user first learns that the number itself is wrong."""

    def __init__(self, adapter: type[HttpCarrierAdapter], message: str) -> None:
        self.code = adapter.code
        self.max_batch = adapter.max_batch
        self.message = message
        self._invalid_reason = adapter.invalid_reason

    async def track(self, numbers: Sequence[str]) -> Mapping[str, TrackingOutcome]:
        outcomes: dict[str, TrackingOutcome] = {}
        for given in numbers:
            number = normalize_number(given)
            reason = self._invalid_reason(number)
            kind = FailureKind.NOT_CONFIGURED if reason is None else FailureKind.INVALID_NUMBER
            outcomes[given] = TrackingFailure(self.code, number, kind, reason or self.message)
        return outcomes

    async def aclose(self) -> None:
        return None
