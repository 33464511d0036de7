"""What routes depend on, as typed FastAPI dependencies over the process's `Services`.

Routes never reach into `app.state` themselves: they declare `ServicesDep`, `SessionDep`,
`ClockDep`, `EstimatorDep` or `require_api_key` (the estimate route, the hot path, calls the
typed accessor `services_of(request)` instead). Dependencies are `async def` so FastAPI calls
them on the event loop instead of a thread pool (they only read attributes).

`SessionDep` is the request's unit of work: one session, committed once when the handler
returns and rolled back when it raises, before the response is sent (so a failed commit is a
500, never a 200 for writes that did not land). Handlers and the functions they call never
commit.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service import api_keys
from tracking_service.api.problems import ProblemError
from tracking_service.clock import Clock
from tracking_service.estimator.estimate import Estimator
from tracking_service.services import Services


def services_of(request: Request) -> Services:
    """The runtime the app's lifespan opened (for the estimate route, which takes `Request`
    and calls this instead of declaring `ServicesDep`: resolving dependencies costs a hot
    route a measurable share of its time)."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """The runtime the app's lifespan opened."""
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """One session per request: commit when the handler succeeds, roll back otherwise."""
    async with services.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_clock(services: ServicesDep) -> Clock:
    return services.clock


ClockDep = Annotated[Clock, Depends(get_clock)]


async def get_estimator(services: ServicesDep) -> Estimator:
    return services.estimator


EstimatorDep = Annotated[Estimator, Depends(get_estimator)]


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerKey",
    description="Back-office API key as `Authorization: Bearer KEY` "
    "(`tracking-service create-api-key --name NAME` makes one)",
)
_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="The same key in the `X-API-Key` header",
)


@dataclass(frozen=True, slots=True)
class ApiCaller:
    """Who a back-office request comes from: a key's name and its row id (None for a key of
    `TRACKING_API_KEYS`)."""

    name: str
    key_id: int | None


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, kind="unauthorized", headers={"WWW-Authenticate": "Bearer"})


async def require_api_key(
    services: ServicesDep,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> ApiCaller:
    """The caller of a back-office route, or a 401 problem+json.

    The key comes as `Authorization: Bearer KEY` or in `X-API-Key` (the bearer one when both
    are sent). Valid keys: those of `TRACKING_API_KEYS`, compared in constant time without
    touching the database, and the active keys of the `api_keys` table, one lookup by hash in
    the request's session (`api_keys.verify`, which records the use at most once a minute).
    With no key configured at all the back office is closed, and the answer says how to
    create a key. Use it as `dependencies=[Depends(require_api_key)]` on any router."""
    key = bearer.credentials if bearer is not None else header_key
    if key:
        for i, configured in enumerate(services.settings.api_keys):
            if secrets.compare_digest(key.encode(), configured.encode()):
                return ApiCaller(name=f"TRACKING_API_KEYS[{i}]", key_id=None)
        row = await api_keys.verify(session, key, services.clock.now())
        if row is not None:
            return ApiCaller(name=row.name, key_id=row.id)
    if not services.settings.api_keys and not await api_keys.any_active(session):
        raise _unauthorized(
            "no API key is configured: create one with "
            f"`{api_keys.CREATE_HINT}` and send it as `Authorization: Bearer KEY` "
            "(or in the X-API-Key header)"
        )
    raise _unauthorized(
        "missing or unknown API key: send it as `Authorization: Bearer KEY` "
        "or in the X-API-Key header"
    )
