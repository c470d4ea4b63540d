"""The console in a real browser: Debian's headless chromium, driven by Playwright.

One gunicorn (as ``make run`` starts it, with an API token) serves a scenario built
through the API; the tests read the pages as a person would, act through their forms
(after logging in with the token) and check the events the actions recorded. Screenshots
for review go to var/ui/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import ROOT, clean_environ, gunicorn
from tests.ui.scenario import Scenario, build

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "var" / "ui"
TOKEN = "browser-token"  # noqa: S105 - a test server's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GREEN = "rgb(95, 191, 119)"  # completed, as draw.STATUS_COLOURS has it
PURPLE = "rgb(197, 155, 240)"  # review

playwright_api = pytest.importorskip("playwright.sync_api")


class Live:
    """The server's base URL, its scenario and a few API calls for the checks."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        self.http.headers.update(AUTH)
        self.scenario: Scenario = build(self.call)

    def call(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        response = self.http.request(method, self.base + path, json=body, timeout=30)
        return response.status_code, response.json() if response.content else None

    def ui_events(self, type_: str) -> list[dict[str, Any]]:
        """Events of ``type_`` recorded by the console (``metadata.source`` "ui")."""
        status, body = self.call("GET", f"/api/v1/events?type={type_}&limit=1000", None)
        assert status == 200, body
        return [e for e in body["events"] if e["metadata"].get("source") == "ui"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Debian's chromium: run `make chromium`")
    where = tmp_path_factory.mktemp("console")
    env = clean_environ(
        PERSISTENCE_MODULE="eventsourcing.sqlite",
        SQLITE_DBNAME=str(where / "fleet.sqlite3"),
        FLEET_API_TOKEN=TOKEN,
        FLEET_SECRET_KEY="browser-test-secret",  # noqa: S106 - a test server's key
    )
    with gunicorn(env, where / "gunicorn.log", "--timeout", "60") as (base, _):
        yield Live(base)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        # Root in a container: chromium's sandbox needs namespaces it may not have.
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def shot(tab: Any, name: str) -> None:
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_overview_at_desktop_and_phone_width(live: Live, page: Any) -> None:
    page.goto(live.base + "/ui/")
    missions = page.locator("#missions")
    assert "Ship the release" in missions.inner_text()
    assert missions.locator("progress").first.get_attribute("value") == "20"
    assert "src/app.py" in page.locator("#locks").inner_text()
    assert "alice 2 unread" in " ".join(page.locator("#mail").inner_text().split())
    assert page.locator("svg.chart rect").count() == 60
    shot(page, "overview-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "overview-390")


def test_mission_graph(live: Live, page: Any) -> None:
    page.goto(f"{live.base}/ui/missions/{live.scenario.mission_id}")
    nodes = page.locator("svg.graph a.node")
    assert nodes.count() == 5
    design = page.locator(f'a.node[data-sortie="{live.scenario.sorties["design"]}"]')
    docs = page.locator(f'a.node[data-sortie="{live.scenario.sorties["docs"]}"] rect')
    assert design.get_attribute("data-status") == "completed"
    assert design.locator("rect").evaluate("r => getComputedStyle(r).fill") == GREEN
    assert docs.evaluate("r => getComputedStyle(r).fill") == PURPLE
    build_ = page.locator(f'a.node[data-sortie="{live.scenario.sorties["build"]}"]').text_content()
    assert "build" in build_ and "in_progress 60% · bob" in build_
    assert page.locator(".progress-line progress").get_attribute("value") == "20"
    release = page.locator(f'tr[data-sortie="{live.scenario.sorties["release"]}"]')
    assert "test" in release.inner_text() and "docs" in release.inner_text()  # blocked by
    shot(page, "mission-graph")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "mission-graph-390")


def test_sortie_time_travel(live: Live, page: Any) -> None:
    page.goto(f"{live.base}/ui/sorties/{live.scenario.sorties['docs']}")
    assert page.locator("#sortie-status").inner_text() == "review"
    page.fill("#tt-version", "2")
    page.press("#tt-version", "Enter")
    page.wait_for_url("**version=2**")
    assert page.locator("#sortie-status").inner_text() == "assigned"
    assert "Showing version 2" in page.inner_text("main")
    shot(page, "sortie-as-of-v2")
    page.goto(f"{live.base}/ui/specialists/bob")
    assert "specialist_registered" in page.locator("#timeline").inner_text()
    shot(page, "specialist")


def test_live_update_without_reload(live: Live, page: Any) -> None:
    page.goto(live.base + "/ui/")
    page.wait_for_function("document.getElementById('live').textContent === 'live'")
    page.evaluate("window.notReloaded = true")
    live.call(
        "POST",
        "/api/v1/mailboxes/dave/messages",
        {"message_type": "note", "content": {"text": "hello"}, "sender_id": "bob"},
    )
    page.locator("#mail", has_text="dave").wait_for()
    assert page.evaluate("window.notReloaded") is True


def login(live: Live, tab: Any) -> None:
    tab.goto(live.base + "/ui/login?next=/ui/")
    tab.fill("#operator", "olga")
    tab.fill("#token", TOKEN)
    tab.press("#token", "Enter")
    tab.wait_for_url("**/ui/")
    assert "Logged in as olga" in tab.inner_text("main")


def flashed(tab: Any) -> str:
    return str(tab.locator(".flash").first.inner_text())


def test_actions_through_the_page(live: Live, page: Any) -> None:
    scenario = live.scenario
    docs = f"{live.base}/ui/sorties/{scenario.sorties['docs']}"
    page.goto(docs)
    page.fill("#feedback", "not yet")
    page.click("text=Request changes")
    assert "Log in" in flashed(page)  # a token is set: no action without a login
    assert not live.ui_events("review_completed")
    login(live, page)

    # Request changes, by keyboard only: type the feedback, Tab to the buttons, Enter.
    page.goto(docs)
    page.focus("#feedback")
    page.keyboard.type("add examples")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "Changes requested" in flashed(page)
    (changed,) = live.ui_events("review_completed")
    assert changed["data"]["verdict"] == "needs_changes"
    assert changed["data"]["feedback"] == "add examples"
    assert changed["metadata"]["actor"] == "olga"

    live.call(
        "PATCH",
        f"/api/v1/sorties/{scenario.sorties['docs']}",
        {"status": "review", "reviewer_id": "bob"},
    )
    page.goto(docs)
    shot(page, "sortie-review")
    page.click("button:has-text('Approve')")
    assert "Approved" in flashed(page)
    assert live.ui_events("sortie_completed")[0]["stream_id"] == scenario.sorties["docs"]

    page.goto(f"{live.base}/ui/sorties/{scenario.sorties['test']}")
    page.select_option("#assigned_to", "alice")
    page.click("button:has-text('Reassign')")
    assert "Reassigned to alice" in flashed(page)
    assert live.ui_events("sortie_assigned")[0]["data"]["specialist_id"] == "alice"

    page.goto(f"{live.base}/ui/sorties/{scenario.sorties['release']}")
    page.fill("#reason", "next quarter")
    page.click("button:has-text('Cancel sortie')")
    assert "Cancelled" in flashed(page)
    assert live.ui_events("sortie_cancelled")[0]["data"]["reason"] == "next quarter"

    page.goto(f"{live.base}/ui/mailboxes/alice")
    assert page.input_value("#thread_id") == scenario.thread_id
    page.fill("#body", "Ship it <b>today</b>")
    page.click("#send-form button")
    assert "as overseer" in flashed(page)
    (sent,) = live.ui_events("squawk_sent")
    assert sent["data"]["sender_id"] == "overseer"
    assert sent["data"]["thread_id"] == scenario.thread_id
    assert page.locator(".messages li").last.locator(".body").inner_text() == "Ship it <b>today</b>"
    shot(page, "mailbox-thread")

    page.goto(f"{live.base}/ui/locks")
    shot(page, "locks")
    page.click(f'tr[data-lock="{scenario.lock_id}"] button')
    assert "released" in flashed(page)
    (released,) = live.ui_events("lock_released")
    assert (
        released["data"]["lock_id"] == scenario.lock_id and released["data"]["reason"] == "forced"
    )

    page.goto(f"{live.base}/ui/missions/{scenario.mission_id}")
    page.fill("#cp-desc", "before the release")
    page.click("text=Create checkpoint of this mission")
    assert "Checkpoint created" in flashed(page)
    (created,) = live.ui_events("checkpoint_created")
    page.goto(f"{live.base}/ui/checkpoints")
    page.click(f'tr[data-checkpoint="{created["stream_id"]}"] >> text=Restore…')
    shot(page, "restore-confirm")
    page.click("#restore-form button")  # not confirmed: the browser keeps the form
    assert not live.ui_events("checkpoint_restored")
    page.check("input[name=confirm]")
    page.click("#restore-form button")
    assert "Checkpoint restored" in flashed(page)
    (restored,) = live.ui_events("checkpoint_restored")
    assert restored["metadata"]["actor"] == "olga"

    page.goto(f"{live.base}/ui/events?correlation_id={restored['correlation_id']}")
    assert "checkpoint_restored" in page.inner_text("#event-list")
    page.click("text=Show this correlation as a causation tree")
    tree = page.locator("#chain > ul.tree > li")
    assert tree.count() == 1 and "checkpoint_restored" in tree.first.inner_text()
    assert tree.first.locator("ul.tree li").count() >= 1  # fleet_recovered, caused by it
    shot(page, "causation-tree")
    page.goto(f"{live.base}/ui/events")
    shot(page, "events")
