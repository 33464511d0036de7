"""`tracking-service import-history`: good files, bad rows, repeat imports, unreadable input."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.db import create_engine, unit_of_work
from tracking_service.history import store as history_store
from tracking_service.settings import get_settings

OLIST_SMALL = Path(__file__).parent.parent / "fixtures" / "handmade_marketplace_format.csv"
runner = CliRunner()


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The command's database is the test's fresh database (on SQLite and PostgreSQL)."""
    monkeypatch.setenv("TRACKING_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def stored(url: str, source: str | None = None) -> int:
    async def go() -> int:
        engine = create_engine(url)
        try:
            async with unit_of_work(engine) as session:
                return await history_store.count(session, source)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def import_history(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["import-history", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def with_bad_rows(tmp_path: Path) -> Path:
    header, *rows = OLIST_SMALL.read_text().splitlines()
    rows[1] = rows[1].replace(",AM,", ",XX,")  # line 3: unknown customer state
    rows[3] = rows[3].replace("2017-10-19 12:00:00", "2017-10-01 12:00:00")  # line 5
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_good_file_imports_every_row_and_a_second_run_adds_nothing(db: str) -> None:
    code, output = import_history(str(OLIST_SMALL), "--format", "olist")
    assert code == 0, output
    assert "read 6 rows of handmade_marketplace_format.csv (olist): 6 valid, 0 rejected" in output
    assert "6 new, 0 already present" in output
    assert stored(db, "olist") == 6

    code, output = import_history(str(OLIST_SMALL), "--format", "olist")
    assert code == 0, output
    assert "0 new, 6 already present" in output
    assert stored(db) == 6


def test_source_name_keeps_imports_apart(db: str) -> None:
    assert import_history(str(OLIST_SMALL), "-f", "olist", "--source", "shop-a")[0] == 0
    code, output = import_history(str(OLIST_SMALL), "-f", "olist", "--source", "shop-b")
    assert code == 0 and "6 new, 0 already present" in output
    assert (stored(db, "shop-a"), stored(db, "shop-b")) == (6, 6)


def test_bad_rows_are_listed_by_line_and_the_rest_imported(db: str, tmp_path: Path) -> None:
    code, output = import_history(str(with_bad_rows(tmp_path)), "--format", "olist")
    assert code == 0, output
    assert "4 valid, 2 rejected" in output
    assert "line 3: customer_state: unknown Brazilian state 'XX'" in output
    assert "line 5: delivered before it was ordered" in output
    assert "4 new, 0 already present" in output
    assert stored(db) == 4


def test_only_the_first_bad_rows_are_listed(db: str, tmp_path: Path) -> None:
    args = (str(with_bad_rows(tmp_path)), "--format", "olist", "--show-errors", "1")
    code, output = import_history(*args)
    assert code == 0
    assert "line 3:" in output and "line 5:" not in output
    assert "... and 1 more" in output


def test_file_with_no_valid_row_fails(db: str, tmp_path: Path) -> None:
    header, first, *_ = OLIST_SMALL.read_text().splitlines()
    path = tmp_path / "all_bad.csv"
    path.write_text(f"{header}\n{first.replace(',SP,', ',ZZ,', 1)}\n")
    code, output = import_history(str(path), "--format", "olist")
    assert code == 1
    assert "line 2: seller_state: unknown Brazilian state 'ZZ'" in output
    assert "no valid rows to import" in output


def test_gzipped_file_and_dry_run(db: str, tmp_path: Path) -> None:
    packed = tmp_path / "small.csv.gz"
    packed.write_bytes(gzip.compress(OLIST_SMALL.read_bytes()))
    code, output = import_history(str(packed), "--format", "olist", "--dry-run")
    assert code == 0, output
    assert "dry run: 6 rows would be imported" in output
    assert stored(db) == 0
    code, output = import_history(str(packed), "--format", "olist")
    assert code == 0 and "6 new" in output


def test_missing_file_is_a_clear_error(db: str, tmp_path: Path) -> None:
    code, output = import_history(str(tmp_path / "nowhere.csv"), "--format", "olist")
    assert code == 2
    assert "error: no such file" in output and "nowhere.csv" in output


def test_file_of_another_format_is_a_clear_error(db: str) -> None:
    code, output = import_history(str(OLIST_SMALL), "--format", "generic")
    assert code == 2
    assert "not a generic history file: missing column(s) order_time" in output
    assert stored(db) == 0


def test_unknown_format_is_a_clear_error(db: str) -> None:
    code, output = import_history(str(OLIST_SMALL), "--format", "xml")
    assert code == 2
    assert "unknown format 'xml': use one of generic, olist" in output


def test_import_names_its_database(
    db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "info")
    get_settings.cache_clear()
    code, output = import_history(str(OLIST_SMALL), "--format", "olist")
    assert code == 0, output
    named = [r.getMessage() for r in caplog.records if r.getMessage().startswith("database: ")]
    assert len(named) == 1
    if db.startswith("sqlite"):
        assert named[0].endswith(db.removeprefix("sqlite:///"))


def test_import_reads_the_file_off_the_event_loop(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batch is read and parsed in a worker thread, never on the event loop's thread."""
    from tracking_service.cli import history as cli_history

    threads: list[bool] = []
    original = cli_history.BatchReader.next_batch

    def spy(self: cli_history.BatchReader, size: int = 2000) -> list[Any]:
        threads.append(threading.current_thread() is threading.main_thread())
        return original(self, size)

    monkeypatch.setattr(cli_history.BatchReader, "next_batch", spy)
    code, output = import_history(str(OLIST_SMALL), "--format", "olist")
    assert code == 0, output
    assert threads and not any(threads)
