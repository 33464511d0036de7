"""The README's commands and requests run as written and print what the README shows.

Convention (in README.md): an HTML comment right before a fenced block says what to do with it.

- `<!-- readme-check: command [scenario=NAME] [needs=olist] -->`: the block is a terminal
  session. Each `$ ` line (continued by a trailing backslash) is a command, run with bash from
  the root of a copy of the repository (a temporary directory with links to the repository's
  files and its `.venv`, so the default SQLite database `./var/tracking.db` is a fresh one).
  The lines up to the next `$ ` are its output, stdout and stderr together as a terminal shows
  them; a last line `(exit N)` is its exit code (0 when absent). `$ export NAME=VALUE` sets a
  variable for the later commands and requests of the same scenario.
- `<!-- readme-check: request [scenario=NAME] [needs=olist] -->`: the block is one `curl`
  command; it is sent in-process to the app built from the scenario's environment and
  directory (its lifespan runs, so delivery history in the scenario's database is loaded).
  The next marked block must be `<!-- readme-check: response [status=NNN] -->`, the JSON the
  request answers (status 200 when not given).
- `<!-- readme-check: skip: REASON -->`: not run (it contacts a real carrier, serves until
  stopped, needs a download ...); the reason is required.

Blocks of one scenario share a directory and environment and run in README order; a block
without a scenario runs on its own, in a fresh directory (`line-N`, N its fence's line).
Scenarios run side by side (a few at a time), each in README order.

`needs=olist` skips the scenario when the Olist sample is not on this machine
(`../shared/data/olist/deliveries_train.csv.gz` beside the repository; CI has it); it is linked
into the scenario's directory as `olist_deliveries.csv.gz`, the name the README tells a user to
give the file they prepare from the public data set.

Wildcards: in command output, a line `...` stands for any number of lines and `...` inside a
line for any text; lines are compared without trailing spaces. In a JSON response, the string
`"..."` stands for any value, a string containing `...` matches with it as a wildcard, a list
item `"..."` for any number of items, and a key `"..."` allows keys the README does not show
(otherwise an object must have exactly the keys shown).

Every fenced block that holds a command (`$ `, `curl`, `tracking-service`, `make`) must carry
a marker, and the README must never send readers to `../shared/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OLIST = ROOT.parent / "shared" / "data" / "olist" / "deliveries_train.csv.gz"
OLIST_NAME = "olist_deliveries.csv.gz"
# hand-made rows in the layout of the Kaggle tables (not the data set): copied under the file
# names the conversion script reads
HANDMADE_TABLES = Path(__file__).resolve().parent / "readme" / "kaggle_layout_handmade"
VENV = Path(sys.prefix)
COMMAND_TIMEOUT = 120

MARKER = re.compile(r"^<!--\s*readme-check:\s*(\w+)(:?)(.*?)-->\s*$")
FENCE = re.compile(r"^(`{3,})(\S*)\s*$")
LOOKS_RUNNABLE = re.compile(r"^\s*\$ |\bcurl\b|\btracking-service\b|^\s*make\b", re.MULTILINE)
EXIT = re.compile(r"^\(exit (\d+)\)$")
KINDS = ("command", "request", "response", "skip")


# -- the README's blocks -------------------------------------------------------------------------


@dataclass
class Block:
    line: int  # line of the opening fence, 1-based
    lang: str
    text: str
    kind: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def scenario(self) -> str:
        return self.options.get("scenario", f"line-{self.line}")

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the readme-check marker right before it."""
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: tuple[str, str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line.strip())
        fence = FENCE.match(line)
        if marker:
            pending = (marker.group(1), marker.group(2), marker.group(3).strip())
        elif fence:
            end = i + 1
            while end < len(lines) and lines[end].strip() != fence.group(1):
                end += 1
            block = Block(line=i + 1, lang=fence.group(2), text="\n".join(lines[i + 1 : end]))
            if pending is not None:
                kind, colon, rest = pending
                block.kind = kind
                if colon:
                    block.reason = rest
                else:
                    block.options = dict(item.split("=", 1) for item in rest.split() if "=" in item)
            blocks.append(block)
            pending = None
            i = end
        elif line.strip():
            pending = None
        i += 1
    return blocks


BLOCKS = parse_blocks(README.read_text("utf-8"))


@dataclass
class Command:
    command: str
    expected: list[str]
    exit_code: int


def parse_session(block: Block) -> list[Command]:
    """The `$ ` commands of a command block with the output and exit code shown for each."""
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise AssertionError(f"{block.where}: expected a `$ ` line, got {lines[i]!r}")
        parts = [lines[i][2:]]
        while parts[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            parts.append(lines[i])
        i += 1
        output: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i].rstrip())
            i += 1
        while output and not output[-1]:
            output.pop()
        exit_code = 0
        if output and (m := EXIT.match(output[-1])):
            exit_code = int(m.group(1))
            output.pop()
            while output and not output[-1]:
                output.pop()
        commands.append(Command("\n".join(parts), output, exit_code))
    return commands


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None


def parse_curl(block: Block) -> Request:
    """The one curl command of a request block."""
    text = block.text.replace("\\\n", " ").strip()
    text = text.removeprefix("$ ")
    words = shlex.split(text, comments=True)
    assert words and words[0] == "curl", f"{block.where}: a request block holds one curl command"
    method, url, body = "GET", None, None
    headers: dict[str, str] = {}
    args = iter(words[1:])
    for word in args:
        if word in ("-s", "--silent", "-S", "-i"):
            continue
        if word in ("-X", "--request"):
            method = next(args)
        elif word in ("-H", "--header"):
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw"):
            body = next(args)
            if method == "GET":
                method = "POST"
        elif word.startswith("-"):
            raise AssertionError(f"{block.where}: curl option {word} is not understood here")
        else:
            url = word
    assert url, f"{block.where}: no URL"
    if body is not None and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
    path = "/" + re.sub(r"^(https?://)?[^/]+/?", "", url)
    return Request(method, path, headers, body)


# -- matching ------------------------------------------------------------------------------------


def _line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in expected.split("...")), re.DOTALL)


def lines_match(expected: list[str], actual: list[str]) -> bool:
    """Line by line, `...` alone on a line standing for any number of lines."""
    patterns = [None if e.strip() == "..." else _line_pattern(e) for e in expected]
    # reachable[j]: the first i expected lines can match the first j actual lines
    reachable = [True] + [False] * len(actual)
    for pattern in patterns:
        following = [False] * (len(actual) + 1)
        for j, ok in enumerate(reachable):
            if not ok:
                continue
            if pattern is None:
                for k in range(j, len(actual) + 1):
                    following[k] = True
                break
            if j < len(actual) and pattern.fullmatch(actual[j]):
                following[j + 1] = True
        reachable = following
    return reachable[len(actual)]


def json_mismatches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Where a JSON value differs from the README's (with its wildcards); empty when it matches."""
    if expected == "...":
        return []
    if isinstance(expected, str) and "..." in expected:
        if isinstance(actual, str) and _line_pattern(expected).fullmatch(actual):
            return []
        return [f"{path}: {actual!r} does not match {expected!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems: list[str] = []
        shown = {key: value for key, value in expected.items() if key != "..."}
        for key, value in shown.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += json_mismatches(value, actual[key], f"{path}.{key}")
        if "..." not in expected:
            problems += [
                f"{path}.{key}: not shown in the README" for key in actual if key not in shown
            ]
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        return _list_mismatches(expected, actual, path)
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: {actual!r} is not the README's {expected!r}"]
    return []


def _list_mismatches(expected: list[Any], actual: list[Any], path: str) -> list[str]:
    if "..." not in expected:
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items, the README shows {len(expected)}"]
        problems: list[str] = []
        for n, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problems += json_mismatches(e, a, f"{path}[{n}]")
        return problems
    # With "..." items: the shown items must match actual items in order (greedy, first fit).
    j = 0
    for e in expected:
        if e == "...":
            continue
        while j < len(actual) and json_mismatches(e, actual[j]):
            j += 1
        if j == len(actual):
            closest = min(
                (json_mismatches(e, a, f"{path}[{n}]") for n, a in enumerate(actual)),
                key=len,
                default=[],
            )
            return [
                f"{path}: no item (in order) matches the README's {json.dumps(e)[:120]}...; "
                "the closest differs in:",
                *closest,
            ]
        j += 1
    return []


# -- running -------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    directory: Path
    env: dict[str, str]


def _environment() -> dict[str, str]:
    """The test's environment without TRACKING_* and without the venv on PATH: a fresh shell."""
    venv_bin = str(VENV / "bin")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRACKING_")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if part and part != venv_bin
    )
    env.update(PYTHONUNBUFFERED="1", COLUMNS="120", NO_COLOR="1", TERM="dumb")
    return env


def make_scenario(name: str, base: Path, needs: set[str]) -> Scenario:
    """A directory that looks like the repository's root on a fresh clone, with its venv."""
    assert (VENV / "bin" / "tracking-service").exists(), (
        f"the README's commands run with {VENV}/bin/tracking-service: run the tests in the "
        "project's venv (make test)"
    )
    directory = base / name
    directory.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in {".venv", "var", ".env", ".git"} or entry.name.startswith("."):
            continue
        (directory / entry.name).symlink_to(entry)
    (directory / ".venv").symlink_to(VENV)
    if "olist" in needs:
        (directory / OLIST_NAME).symlink_to(OLIST)
    return Scenario(name, directory, _environment())


def run_command(scenario: Scenario, command: Command) -> tuple[int, list[str]]:
    words = shlex.split(command.command, comments=True)
    if words and words[0] == "export":
        for assignment in words[1:]:
            name, _, value = assignment.partition("=")
            scenario.env[name] = value
        return 0, []
    done = subprocess.run(
        ["bash", "-c", command.command],
        cwd=scenario.directory,
        env=scenario.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return done.returncode, lines


def _app_client_factory() -> Callable[[Any], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """The suite's `app_client(settings)` helper when there is one, else the same by hand."""
    for module in ("api.helpers", "tests.api.helpers"):
        try:
            found = getattr(__import__(module, fromlist=["app_client"]), "app_client", None)
        except ImportError:
            continue
        if found is not None:
            return found  # type: ignore[no-any-return]

    @asynccontextmanager
    async def app_client(settings: Any) -> AsyncIterator[httpx.AsyncClient]:
        from tracking_service.app import create_app

        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client

    return app_client


async def send(scenario: Scenario, request: Request) -> httpx.Response:
    """The request, in-process, to the app `make run` would start in the scenario.

    The settings are what the scenario's directory and environment give (its TRACKING_*
    variables through an env file, relative paths read from its directory), without touching
    this process's environment or working directory: scenarios run side by side in threads.
    """
    from tracking_service.settings import Settings

    env_file = scenario.directory.parent / f"{scenario.name}.env"
    env_file.write_text(
        "".join(
            f"{name}='{value}'\n"  # single quotes: the value as it is, no escapes
            for name, value in scenario.env.items()
            if name.startswith("TRACKING_")
        ),
        "utf-8",
    )
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    update: dict[str, Any] = {}
    if not settings.rules_file.is_absolute():
        update["rules_file"] = scenario.directory / settings.rules_file
    database = settings.database_url.removeprefix("sqlite:///")
    if settings.database_url.startswith("sqlite:///") and not database.startswith("/"):
        update["database_url"] = f"sqlite:///{scenario.directory / database}"
    async with _app_client_factory()(settings.model_copy(update=update)) as client:
        return await client.request(
            request.method,
            request.path,
            headers=request.headers,
            content=request.body.encode() if request.body is not None else None,
        )


def _show(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines) or "    (nothing)"


def scenarios() -> Iterator[Any]:
    names: dict[str, list[Block]] = {}
    for block in BLOCKS:
        if block.kind in ("command", "request"):
            names.setdefault(block.scenario, []).append(block)
    for name in names:
        yield pytest.param(name, id=name)


def _blocks_of(name: str) -> list[tuple[Block, Block | None]]:
    """The scenario's command and request blocks in order, each request with its response."""
    out: list[tuple[Block, Block | None]] = []
    marked = [b for b in BLOCKS if b.kind is not None]
    for n, block in enumerate(marked):
        if block.kind == "command" and block.scenario == name:
            out.append((block, None))
        elif block.kind == "request" and block.scenario == name:
            response = marked[n + 1] if n + 1 < len(marked) else None
            out.append((block, response))
    return out


def _needs(name: str) -> set[str]:
    return {
        need for block, _ in _blocks_of(name) for need in block.options.get("needs", "").split(",")
    }


async def _check_request(scenario: Scenario, block: Block, response: Block | None) -> list[str]:
    assert response is not None and response.kind == "response", (
        f"{block.where}: a request block must be followed by a response block"
    )
    request = parse_curl(block)
    answer = await send(scenario, request)
    status = int(response.options.get("status", "200"))
    try:
        body = answer.json()
    except ValueError:
        body = answer.text
    problems = [] if answer.status_code == status else [f"status {answer.status_code}"]
    problems += json_mismatches(json.loads(response.text), body)
    if not problems:
        return []
    return [
        f"{block.where}: {request.method} {request.path} (response at {response.where})\n"
        + "\n".join(f"  {p}" for p in problems)
        + f"\n  actual:\n{json.dumps(body, indent=2, ensure_ascii=False)}"
    ]


def run_scenario(name: str, base: Path) -> list[str]:
    """Every block of one scenario in README order; what differs from the README."""
    scenario = make_scenario(name, base, _needs(name))
    failures: list[str] = []
    for block, response in _blocks_of(name):
        if block.kind == "request":
            failures += asyncio.run(_check_request(scenario, block, response))
            continue
        for command in parse_session(block):
            code, lines = run_command(scenario, command)
            if code != command.exit_code or not lines_match(command.expected, lines):
                failures.append(
                    f"{block.where}: $ {command.command}\n"
                    f"  README shows (exit {command.exit_code}):\n{_show(command.expected)}\n"
                    f"  actual (exit {code}):\n{_show(lines)}"
                )
    return failures


@pytest.fixture(scope="module")
def readme_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, list[str] | str]]:
    """The selected scenarios, run side by side (each in order): failures, or why skipped."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_readme_scenario"
        and hasattr(item, "callspec")
    }
    base = tmp_path_factory.mktemp("readme")
    results: dict[str, list[str] | str] = {}
    runnable = []
    for name in selected:
        if "olist" in _needs(name) and not OLIST.exists():
            results[name] = f"the Olist sample is not on this machine ({OLIST})"
        else:
            runnable.append(name)
    with pytest.MonkeyPatch.context() as patch:
        for variable in [v for v in os.environ if v.startswith("TRACKING_")]:
            patch.delenv(variable)
        # the scenarios with most to do first, a few at a time: the CPU, not waiting, bounds them
        runnable.sort(key=lambda name: -len(_blocks_of(name)) - 10 * ("olist" in _needs(name)))
        # Commands run in threads (the work is in their processes); scenarios with requests run
        # here, one at a time, since two apps' lifespans in one process may share state.
        in_process = [n for n in runnable if any(b.kind == "request" for b, _ in _blocks_of(n))]
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                name: pool.submit(run_scenario, name, base)
                for name in runnable
                if name not in in_process
            }
            for name in in_process:
                results[name] = run_scenario(name, base)
            for name, future in futures.items():
                results[name] = future.result()
        yield results


@pytest.mark.parametrize("name", list(scenarios()))
def test_readme_scenario(name: str, readme_runs: dict[str, list[str] | str]) -> None:
    result = readme_runs[name]
    if isinstance(result, str):
        pytest.skip(result)
    assert not result, "README output differs:\n\n" + "\n\n".join(result)


# -- the README's own rules ----------------------------------------------------------------------


def test_every_runnable_block_is_checked_or_says_why_not() -> None:
    unmarked = [b.where for b in BLOCKS if b.kind is None and LOOKS_RUNNABLE.search(b.text)]
    assert not unmarked, f"blocks with commands but no readme-check marker: {unmarked}"
    for block in BLOCKS:
        assert block.kind in (None, *KINDS), f"{block.where}: unknown marker {block.kind!r}"
        if block.kind == "skip":
            assert block.reason, f"{block.where}: a skipped block says why"
    marked = [b for b in BLOCKS if b.kind is not None]
    for n, block in enumerate(marked):
        if block.kind == "response":
            assert n > 0 and marked[n - 1].kind == "request", f"{block.where}: no request"
        if block.kind == "request":
            assert n + 1 < len(marked) and marked[n + 1].kind == "response", (
                f"{block.where}: no response block follows"
            )
    assert sum(b.kind == "command" for b in BLOCKS) >= 3
    assert sum(b.kind == "request" for b in BLOCKS) >= 2


def test_commands_run_as_written_from_a_fresh_clone() -> None:
    """`tracking-service` is not on PATH after `make run`: every command names `.venv/bin/`.

    The commands of a block are its `$ ` lines, or, in a skipped block without any, every line
    (a plain script, like `make run`)."""
    bare = re.compile(r"(?:^|[\s;&|(])tracking-service\s")
    for block in BLOCKS:
        if block.kind not in ("command", "skip"):
            continue
        lines = block.text.splitlines()
        session = any(line.startswith("$ ") for line in lines)
        for line in lines:
            if line.startswith("$ ") or not session:
                command = line.removeprefix("$ ")
                assert not bare.search(command.split("#")[0]), (
                    f"{block.where}: {command!r} needs .venv/bin/tracking-service"
                )


def test_readme_keeps_its_two_commands_and_no_outside_paths() -> None:
    text = README.read_text("utf-8")
    assert "make run" in text and "make test" in text
    assert "../shared" not in text, "a clone has no ../shared: the README must not send there"
    assert "docs/architecture.md" in text
    assert (ROOT / "docs" / "architecture.md").is_file()


def test_the_olist_conversion_makes_a_file_the_importer_reads(tmp_path: Path) -> None:
    """`docs/olist_deliveries.py` on a hand-made copy of the Kaggle tables (tests/readme/)."""
    from tracking_service.history.files import RowError, read_deliveries

    tables = tmp_path / "tables"
    tables.mkdir()
    for table in HANDMADE_TABLES.glob("*.csv"):
        shutil.copyfile(table, tables / f"olist_{table.stem}_dataset.csv")
    target = tmp_path / "olist_deliveries.csv.gz"
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "olist_deliveries.py"), str(tables), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote 2 delivered orders to {target}\n"
    outcomes = list(read_deliveries(target, "olist"))
    records = {outcome.key: outcome for _, outcome in outcomes if not isinstance(outcome, RowError)}
    assert set(records) == {"o-delivered", "o-two-sellers"}  # shipped and canceled are left out
    two = records["o-two-sellers"]
    # the seller of the first item (order_item_id 1), its zip prefix given its leading zero back
    assert (two.origin_subdivision, two.origin_postal_code) == ("SP", "01037")
    assert (two.dest_subdivision, two.dest_tz) == ("AM", "America/Manaus")
    assert two.origin_lat == pytest.approx(-23.55) and two.dest_lat is None
    assert records["o-delivered"].promised_date.isoformat() == "2017-10-18"


def test_the_matchers_do_what_the_convention_says() -> None:
    assert lines_match(["a ... c", "...", "z"], ["a b c", "x", "y", "z"])
    assert lines_match(["...", "z"], ["z"])
    assert not lines_match(["a", "z"], ["a", "x", "z"])
    assert not lines_match(["a ... c"], ["a b d"])
    assert json_mismatches({"a": "...", "b": [1, "..."]}, {"a": {"x": 1}, "b": [0, 1, 2]}) == []
    assert json_mismatches({"a": 1}, {"a": 1, "b": 2}) == ["$.b: not shown in the README"]
    assert json_mismatches({"a": 1, "...": "..."}, {"a": 1, "b": 2}) == []
    assert json_mismatches({"t": "built ...Z"}, {"t": "built 2026Z"}) == []
    assert json_mismatches([1, 2], [1, 2, 3]) != []
    assert json_mismatches(0.9, 0.90) == [] and json_mismatches(1, True) != []


def test_the_configuration_table_lists_every_setting() -> None:
    """Every field of `Settings` is a `TRACKING_*` variable named in the README's table."""
    from tracking_service.settings import Settings

    text = README.read_text("utf-8")
    section = text[text.index("\n## Configuration\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("| `TRACKING_"))
    listed = set(re.findall(r"`(TRACKING_[A-Z0-9_]+)`", rows))
    wanted = {f"TRACKING_{name.upper()}" for name in Settings.model_fields}
    assert not wanted - listed, f"settings missing from the configuration table: {wanted - listed}"
    assert not listed - wanted, f"the table names unknown settings: {listed - wanted}"
