"""The route dependencies: one unit of work per request, the injected clock, the API key, and
domain errors answered as problem+json (both databases where one is involved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service import api_keys, errors
from tracking_service.api.deps import ClockDep, SessionDep, require_api_key
from tracking_service.app import create_app
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine, unit_of_work
from tracking_service.estimator.records import Delivery
from tracking_service.history import store as history_store
from tracking_service.models.api_keys import ApiKey
from tracking_service.settings import Settings, bundled_rules_path

from .helpers import app_client, lifespan_client

PROBLEM = "application/problem+json"
BRT = timezone(timedelta(hours=-3))
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def parcel(key: str) -> Delivery:
    return Delivery(
        key=key,
        order_time=datetime(2024, 5, 1, 9, tzinfo=BRT),
        handoff_time=None,
        delivered_at=datetime(2024, 5, 4, 15, tzinfo=BRT),
        origin_country="BR",
        origin_subdivision="SP",
        origin_postal_code="01001",
        dest_country="BR",
        dest_subdivision="RJ",
        dest_postal_code="20040",
    )


def app_with_test_routes(settings: Settings, clock: FixedClock | None = None) -> FastAPI:
    """The real app plus throwaway routes that write through `SessionDep`."""
    app = create_app(settings, clock=clock)
    router = APIRouter(prefix="/test")

    @router.post("/write/{key}")
    async def write(key: str, session: SessionDep) -> dict[str, int]:
        counts = await history_store.insert_batch(session, "deps", [parcel(key)])
        return {"inserted": counts.inserted}

    @router.post("/write-then-fail/{key}")
    async def write_then_fail(key: str, session: SessionDep) -> None:
        await history_store.insert_batch(session, "deps", [parcel(key)])
        raise errors.Conflict(f"{key} conflicts with something")

    @router.post("/write-then-crash/{key}")
    async def write_then_crash(key: str, session: SessionDep) -> None:
        await history_store.insert_batch(session, "deps", [parcel(key)])
        raise RuntimeError("bug")

    @router.get("/raise/{kind}")
    async def raise_(kind: str) -> None:
        kinds: dict[str, errors.DomainError] = {
            "not-found": errors.NotFound("no parcel 42"),
            "conflict": errors.Conflict("parcel 42 exists"),
            "unauthorized": errors.Unauthorized("who are you"),
            "forbidden": errors.Forbidden("not yours"),
            "unavailable": errors.Unavailable("carrier down"),
            "invalid": errors.InvalidInput("must be positive", field="body.quantity"),
            "plain": errors.DomainError("no kind"),
        }
        raise kinds[kind]

    app.include_router(router)
    guarded = APIRouter(prefix="/guarded", dependencies=[Depends(require_api_key)])

    @guarded.get("")
    async def guarded_route() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(guarded)
    return app


def settings_for(database_url: str, **kw: object) -> Settings:
    return Settings(
        database_url=database_url,
        rules_file=bundled_rules_path("br_shop.toml"),
        history_refresh_seconds=0,
        **kw,  # type: ignore[arg-type]
    )


async def stored_keys(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with unit_of_work(engine) as session:
            return {d.key for d in await history_store.load_deliveries(session, source="deps")}
    finally:
        await engine.dispose()


async def test_session_commits_when_the_handler_succeeds(database_url: str) -> None:
    app = app_with_test_routes(settings_for(database_url))
    async with lifespan_client(app) as client:
        response = await client.post("/test/write/a")
        assert response.status_code == 200, response.text
        assert response.json() == {"inserted": 1}
    assert await stored_keys(database_url) == {"a"}


async def test_session_rolls_back_when_the_handler_raises(database_url: str) -> None:
    app = app_with_test_routes(settings_for(database_url))
    async with lifespan_client(app, raise_app_exceptions=False) as client:
        refused = await client.post("/test/write-then-fail/b")
        assert refused.status_code == 409
        assert refused.headers["content-type"] == PROBLEM
        crashed = await client.post("/test/write-then-crash/c")
        assert crashed.status_code == 500
        assert crashed.headers["content-type"] == PROBLEM
        assert (await client.post("/test/write/d")).status_code == 200
    assert await stored_keys(database_url) == {"d"}


@pytest.mark.parametrize(
    ("kind", "status", "type_"),
    [
        ("not-found", 404, "not-found"),
        ("conflict", 409, "conflict"),
        ("unauthorized", 401, "unauthorized"),
        ("forbidden", 403, "forbidden"),
        ("unavailable", 503, "service-unavailable"),
        ("invalid", 422, "validation-error"),
        ("plain", 500, "internal-error"),
    ],
)
async def test_domain_errors_are_problems(
    tmp_path: Path, kind: str, status: int, type_: str
) -> None:
    app = app_with_test_routes(settings_for(f"sqlite:///{tmp_path / 'deps.db'}"))
    async with lifespan_client(app, raise_app_exceptions=False) as client:
        response = await client.get(f"/test/raise/{kind}")
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + type_)
    assert body["instance"] == f"/test/raise/{kind}"
    if kind == "invalid":
        assert body["errors"] == [
            {"field": "body.quantity", "message": "must be positive", "type": "value_error"}
        ]
    elif kind == "plain":
        assert "no kind" not in body["detail"]
    else:
        assert body["detail"] in {
            "no parcel 42",
            "parcel 42 exists",
            "who are you",
            "not yours",
            "carrier down",
        }


async def test_estimate_now_comes_from_the_clock(tmp_path: Path) -> None:
    """Without `order_time` the route asks the injected clock: Wed 25 Nov 2020 15:30 in New
    York, the day before Thanksgiving, as in the README's example."""
    clock = FixedClock(datetime(2020, 11, 25, 20, 30, tzinfo=UTC))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}", rules_file=bundled_rules_path()
    )
    async with app_client(settings, clock=clock) as client:
        response = await client.post(
            "/v1/estimates", json={"destination": {"country": "US", "postal_code": "10001"}}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["order_time"] == "2020-11-25T20:30:00Z"
        next_day = next(e for e in body["estimates"] if e["option"] == "next-day")
        assert (next_day["ship_date"], next_day["latest"]) == ("2020-11-27", "2020-11-28")

        clock.advance(timedelta(days=1))
        later = await client.post(
            "/v1/estimates", json={"destination": {"country": "US", "postal_code": "10001"}}
        )
        assert later.json()["order_time"] == "2020-11-26T20:30:00Z"


async def test_clock_dependency_is_the_services_clock(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC))
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'deps.db'}"), clock=clock)
    router = APIRouter()

    @router.get("/now")
    async def now(c: ClockDep) -> dict[str, str]:
        return {"now": c.now().isoformat()}

    app.include_router(router)
    async with lifespan_client(app) as client:
        assert (await client.get("/now")).json() == {"now": "2031-01-02T03:04:05+00:00"}


async def test_require_api_key_guards_any_router(tmp_path: Path) -> None:
    """Keys of TRACKING_API_KEYS, as a bearer token or in X-API-Key."""
    settings = settings_for(f"sqlite:///{tmp_path / 'deps.db'}", api_keys=["k1", "k2"])
    async with lifespan_client(app_with_test_routes(settings)) as client:
        for headers in (
            {},
            {"X-API-Key": "wrong"},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic azI6"},  # another scheme: no key
            {"Authorization": "Bearer wrong", "X-API-Key": "k2"},  # the bearer one counts
        ):
            refused = await client.get("/guarded", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == PROBLEM
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["detail"] == (
                "missing or unknown API key: send it as `Authorization: Bearer KEY` "
                "or in the X-API-Key header"
            )
        assert (await client.get("/guarded", headers={"X-API-Key": "k2"})).json() == {"ok": True}
        bearer = {"Authorization": "Bearer k1"}
        assert (await client.get("/guarded", headers=bearer)).json() == {"ok": True}


NO_KEY = (
    "no API key is configured: create one with `tracking-service create-api-key --name NAME` "
    "and send it as `Authorization: Bearer KEY` (or in the X-API-Key header)"
)


async def test_back_office_is_closed_without_any_key(database_url: str) -> None:
    """No key in the settings and no active key in the table: 401, saying how to make one."""
    async with lifespan_client(app_with_test_routes(settings_for(database_url))) as client:
        for headers in ({}, {"X-API-Key": "anything"}, {"Authorization": "Bearer tsk_" + "x" * 43}):
            refused = await client.get("/guarded", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == PROBLEM
            assert refused.json()["detail"] == NO_KEY
    engine = create_engine(database_url)
    try:
        async with unit_of_work(engine) as session:
            _, row = await api_keys.create(session, "old", NOW)
            await api_keys.revoke(session, row.id or 0, NOW)
    finally:
        await engine.dispose()
    async with lifespan_client(app_with_test_routes(settings_for(database_url))) as client:
        assert (await client.get("/guarded")).json()["detail"] == NO_KEY  # revoked only


async def test_keys_of_the_table(database_url: str) -> None:
    """Keys made by create-api-key: bearer or X-API-Key, use recorded once a minute, revoked
    keys refused."""
    engine = create_engine(database_url)
    try:
        async with unit_of_work(engine) as session:
            key, row = await api_keys.create(session, "shop", NOW)
            other, _ = await api_keys.create(session, "other", NOW)
        assert row.id is not None
        clock = FixedClock(NOW + timedelta(hours=1))
        app = app_with_test_routes(settings_for(database_url), clock=clock)
        async with lifespan_client(app) as client:
            for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
                assert (await client.get("/guarded", headers=headers)).json() == {"ok": True}
            used = await stored_key(engine, row.id)
            assert used.last_used_at == NOW + timedelta(hours=1)
            clock.advance(timedelta(seconds=30))
            await client.get("/guarded", headers={"X-API-Key": key})
            assert (await stored_key(engine, row.id)).last_used_at == NOW + timedelta(hours=1)
            clock.advance(timedelta(seconds=30))
            await client.get("/guarded", headers={"X-API-Key": key})
            assert (await stored_key(engine, row.id)).last_used_at == clock.now()
            unknown = await client.get("/guarded", headers={"X-API-Key": key + "x"})
            assert unknown.status_code == 401
            assert unknown.json()["detail"].startswith("missing or unknown API key")

            async with unit_of_work(engine) as session:
                await api_keys.revoke(session, row.id, clock.now())
            revoked = await client.get("/guarded", headers={"Authorization": f"Bearer {key}"})
            assert revoked.status_code == 401
            assert revoked.json()["detail"].startswith("missing or unknown API key")
            still = await client.get("/guarded", headers={"Authorization": f"Bearer {other}"})
            assert still.json() == {"ok": True}
    finally:
        await engine.dispose()


async def stored_key(engine: AsyncEngine, key_id: int) -> ApiKey:
    async with unit_of_work(engine) as session:
        row = await session.get(ApiKey, key_id)
        assert row is not None
        return row


async def test_both_kinds_of_key_work_together(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with unit_of_work(engine) as session:
            key, _ = await api_keys.create(session, "shop", NOW)
    finally:
        await engine.dispose()
    settings = settings_for(database_url, api_keys=["from-settings"])
    async with lifespan_client(app_with_test_routes(settings)) as client:
        for sent in (key, "from-settings"):
            answer = await client.get("/guarded", headers={"Authorization": f"Bearer {sent}"})
            assert answer.json() == {"ok": True}
