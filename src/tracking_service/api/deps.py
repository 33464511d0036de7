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
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel.ext.asyncio.session import AsyncSession

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


ApiKeyHeader = Annotated[
    str | None,
    Header(
        alias="X-API-Key",
        max_length=256,
        description="Back-office API key; required when the service sets TRACKING_API_KEYS",
    ),
]


async def require_api_key(services: ServicesDep, key: ApiKeyHeader = None) -> None:
    """401 problem+json unless the header holds one of `settings.api_keys` (when any is set).

    Declared as an optional header rather than an OpenAPI security scheme: whether a key is
    needed is the deployment's choice (`TRACKING_API_KEYS`), not the contract's. Use it as
    `dependencies=[Depends(require_api_key)]` on any router."""
    keys = services.settings.api_keys
    if not keys:
        return
    if key is None or not any(secrets.compare_digest(key, k) for k in keys):
        raise ProblemError(
            401,
            "missing or unknown API key: send it in the X-API-Key header",
            kind="unauthorized",
            headers={"WWW-Authenticate": "ApiKey"},
        )
