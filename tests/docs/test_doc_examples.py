"""Every code block of README.md and docs/*.md runs, so a change that breaks an example fails.

The convention is docs/testing.md, "Examples that run": Python blocks run in process (each a
program of its own, in a temporary working directory per page); a page's shell blocks run as
one bash session against one live gunicorn with a fresh store, each command checked for its
exit status and every curl answer for its HTTP status (2xx, or the status its trailing comment
names); JSON blocks parse, and a ``<!-- response: GET /path -->`` one has the keys of the live
answer; anything else says ``<!-- not-run: reason -->``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import BIN, OWN_SETTINGS, ROOT, as_make_run, clean_environ, gunicorn

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_BASE = "http://127.0.0.1:8000"
# Blocks that may not run (servers that run until Ctrl-C, changes to the machine). Raise it only
# on purpose: an example that does not run is one that can rot.
NOT_RUN_BUDGET = 11
SHELL = ("sh", "bash")
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", flags=re.MULTILINE | re.DOTALL)
NOTE = re.compile(r"<!--\s*(not-run|response):\s*(.*?)\s*-->")
# A command's trailing comment naming the HTTP status its curl calls must get: `# 409: why`.
EXPECTED = re.compile(r"\s#\s*(\d{3})\b[^'\"]*$")
# A Python line `print(...)  # what it prints`, with `...` standing for anything.
PRINTS = re.compile(r"^\s*print\(.*\)\s+#\s?(.*)$", flags=re.MULTILINE)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    note: str | None  # "not-run" or "response"
    note_text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.note != "not-run"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        note = NOTE.fullmatch(before)
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group(1),
                code=match.group(2),
                note=note.group(1) if note else None,
                note_text=note.group(2) if note else "",
            )
        )
    return found


ALL = [block for page in PAGES for block in blocks(page)]


def pages_with(*langs: str) -> list[Path]:
    return [p for p in PAGES if any(b.lang in langs and b.runs for b in blocks(p))]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# ---- the convention itself ----


def test_every_block_runs_or_says_why_not() -> None:
    unknown = [b.where for b in ALL if b.runs and b.lang not in ("python", "json", *SHELL)]
    assert unknown == [], "a block in another language needs <!-- not-run: reason -->"
    not_run = [b for b in ALL if not b.runs]
    assert [b.where for b in not_run if not b.note_text] == [], "not-run needs a reason"
    assert len(not_run) <= NOT_RUN_BUDGET, [f"{b.where}: {b.note_text}" for b in not_run]
    assert sum(b.runs and b.lang != "json" for b in ALL) >= 20  # the pages are still found


def test_json_samples_parse() -> None:
    for block in ALL:
        if block.lang == "json" and block.runs:
            try:
                json.loads(block.code)
            except ValueError as exc:
                pytest.fail(f"{block.where}: not JSON: {exc}")


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.*)$", FENCE.sub("", page.read_text()), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # https: and the like
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists() or (anchor and anchor not in anchors(file)):
                broken.append(f"{page_id(page)}: {target}")
    assert broken == []


# ---- Python blocks: in process ----


@pytest.mark.parametrize("page", pages_with("python"), ids=page_id)
def test_python_blocks_run(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith(OWN_SETTINGS)]:
        monkeypatch.delenv(key)
    for block in blocks(page):
        if block.lang != "python" or not block.runs:
            continue
        capsys.readouterr()
        exec(compile(block.code, block.where, "exec"), {"__name__": "__main__"})  # noqa: S102
        printed = capsys.readouterr().out.splitlines()
        promised = PRINTS.findall(block.code)
        assert len(printed) == len(promised), f"{block.where}: printed {printed}"
        for line, comment in zip(printed, promised, strict=True):
            pattern = ".*".join(re.escape(part) for part in comment.strip().split("..."))
            assert re.fullmatch(pattern, line), f"{block.where}: {line!r} is not {comment!r}"


# ---- shell blocks: one bash session and one live server per page ----

# `curl` as the examples call it, plus a record of each answer's status for the checks.
PRELUDE = r"""
set -o pipefail
curl() {
  local body code rc
  body=$(mktemp)
  code=$(command curl -sS -o "$body" -w '%{http_code}' "$@")
  rc=$?
  cat "$body"
  rm -f "$body"
  echo "status $code" >> "$FLEET_DOC_STATUS"
  return $rc
}
"""


@dataclass
class Command:
    block: Block
    line: int
    text: str
    expected: int | None
    statuses: list[int]
    exit: int | None = None
    output: str = ""


def commands(block: Block) -> list[Command]:
    """The block's commands: lines joined at a trailing backslash, comment lines skipped."""
    found: list[Command] = []
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(block.code.splitlines(), start=1):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = block.line + offset
        pending.append(line)
        if line.endswith("\\"):
            continue
        text = "\n".join(pending)
        expected = EXPECTED.search(pending[-1])
        found.append(Command(block, start, text, int(expected[1]) if expected else None, []))
        pending = []
    assert not pending, f"{block.where}: the last command ends in a backslash"
    return found


def script(session: list[Command], base: str) -> str:
    parts = [PRELUDE]
    for number, command in enumerate(session):
        parts += [
            f"printf '\\n@@ {number}\\n'",
            f'echo "cmd {number}" >> "$FLEET_DOC_STATUS"',
            command.text.replace(DOCUMENTED_BASE, base),
            f'echo "exit {number} $?" >> "$FLEET_DOC_STATUS"',
        ]
    return "\n".join(parts) + "\n"


def shape(value: Any) -> Any:
    """A JSON value's keys, nested: what a sample must share with the real answer."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return None


@pytest.mark.parametrize("page", pages_with(*SHELL, "json"), ids=page_id)
def test_shell_blocks_run_against_a_live_server(page: Path, tmp_path: Path) -> None:
    store = tmp_path / "fleet.sqlite3"
    session = [c for b in blocks(page) if b.lang in SHELL and b.runs for c in commands(b)]
    responses = [b for b in blocks(page) if b.lang == "json" and b.note == "response"]
    if not session and not responses:
        pytest.skip("no shell block or live sample on this page")
    status_file = tmp_path / "status"
    env = as_make_run(clean_environ(SQLITE_DBNAME=str(store)))
    with gunicorn(env, tmp_path / "gunicorn.log") as (base, _):
        shell_env = env | {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLEET_DOC_STATUS": str(status_file),
            "FLEET_LOG_LEVEL": "WARNING",
        }
        (tmp_path / "session.sh").write_text(script(session, base))
        ran = subprocess.run(  # noqa: S603 - the docs' own commands, as a reader runs them
            ["bash", str(tmp_path / "session.sh")],  # noqa: S607
            cwd=tmp_path,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        for block in responses:
            method, _, rest = block.note_text.partition(" ")
            path, _, body = rest.partition(" ")
            answer = requests.request(method, base + path, data=body or None, timeout=10)
            assert shape(answer.json()) == shape(json.loads(block.code)), (
                f"{block.where}: the sample's keys differ from the answer: {answer.text}"
            )
    check(session, status_file, ran)


def check(session: list[Command], status_file: Path, ran: subprocess.CompletedProcess[str]) -> None:
    current: Command | None = None
    lines = status_file.read_text().splitlines() if status_file.exists() else []
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "cmd":
            current = session[int(rest)]
        elif kind == "status" and current is not None:
            current.statuses.append(int(rest))
        elif kind == "exit":
            number, _, code = rest.partition(" ")
            session[int(number)].exit = int(code)
    for chunk in ran.stdout.split("\n@@ ")[1:]:
        index, _, output = chunk.partition("\n")
        session[int(index)].output = output
    for command in session:
        where = f"{command.block.page.relative_to(ROOT)}:{command.line}"
        detail = f"{where}\n$ {command.text}\n{command.output[-2000:]}\n{ran.stderr[-3000:]}"
        assert command.exit == 0, f"exited {command.exit}: {detail}"
        if command.expected is not None:
            assert command.statuses, (
                f"expects HTTP {command.expected} but made no request: {detail}"
            )
            assert set(command.statuses) == {command.expected}, f"{command.statuses}: {detail}"
        else:
            assert all(200 <= s < 300 for s in command.statuses), f"{command.statuses}: {detail}"
