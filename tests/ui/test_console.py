"""The console through Flask's test client: pages, actions, escaping, CSRF and login."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.ui.conftest import api_caller, csrf_of
from tests.ui.scenario import Scenario, ok
from web import get_fleet

SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
TOKEN = "s3cret"  # noqa: S105 - a test server's token


def page(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    return response.get_data(as_text=True)


def ui_events(client: FlaskClient, type_: str) -> list[dict[str, Any]]:
    found = client.get(f"/api/v1/events?type={type_}&limit=1000").get_json()["events"]
    return [e for e in found if e["metadata"].get("source") == "ui"]


def post(client: FlaskClient, path: str, data: dict[str, str], csrf: str) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf, "next": "/ui/"})


def test_overview_shows_the_fleet(shown_client: FlaskClient, shown_scenario: Scenario) -> None:
    text = page(shown_client, "/ui/")
    assert "Ship the release" in text
    assert 'value="20"' in text  # 1 of 5 sorties completed: the mission's progress bar
    assert "src/app.py" in text and "bob" in text  # the lock and its holder
    assert "2</span> unread" in text  # alice's two unread messages
    assert "Writes per minute" in text and "<rect" in text


def test_mission_graph_has_a_coloured_node_per_sortie(
    shown_client: FlaskClient, shown_scenario: Scenario
) -> None:
    text = page(shown_client, f"/ui/missions/{shown_scenario.mission_id}")
    for title, sortie_id in shown_scenario.sorties.items():
        assert f'data-sortie="{sortie_id}"' in text, title
    assert 'data-status="completed"' in text and 'fill="#5fbf77"' in text
    assert 'data-status="review"' in text and 'fill="#c59bf0"' in text
    assert (
        text.count("marker-end=") == 5
    )  # design->build, build->test, design->docs, 2 into release


def test_sortie_time_travel(shown_client: FlaskClient, shown_scenario: Scenario) -> None:
    docs = shown_scenario.sorties["docs"]
    now = page(shown_client, f"/ui/sorties/{docs}")
    assert 'id="sortie-status">review<' in now and "Approve" in now
    then = page(shown_client, f"/ui/sorties/{docs}?version=2")
    assert 'id="sortie-status">assigned<' in then and "Showing version 2" in then
    assert "Approve" not in then  # no actions on the past
    page(shown_client, f"/ui/sorties/{docs}?version=abc", 422)
    created = get_fleet(shown_client.application).get_sortie(docs, version=1)["created_at"]
    first = page(shown_client, f"/ui/sorties/{docs}?{urlencode({'as_of': created})}")
    assert "Showing version 1" in first


def test_every_page_renders(shown_client: FlaskClient, shown_scenario: Scenario) -> None:
    fleet = get_fleet(shown_client.application)
    correlation = fleet.events(limit=1)[0][0]["correlation_id"]
    for path in (
        "/ui/specialists",
        "/ui/specialists/alice",
        "/ui/specialists/alice?version=1",
        "/ui/missions",
        "/ui/mailboxes",
        "/ui/mailboxes/alice",
        "/ui/locks",
        "/ui/locks?status=all",
        "/ui/checkpoints",
        "/ui/events",
        "/ui/events?type=sortie_assigned",
        f"/ui/events/chain/{correlation}",
    ):
        page(shown_client, path)
    page(shown_client, "/ui/sorties/not-a-sortie", 404)
    assert "Build at 60%." in page(shown_client, "/ui/mailboxes/alice")


def test_correlation_chain_is_a_tree(client: FlaskClient, scenario: Scenario) -> None:
    fleet = get_fleet(client.application)
    with fleet.context(source="test"):
        checkpoint = fleet.create_checkpoint(scenario.mission_id)
    events, _ = fleet.events(stream_id=checkpoint["id"])
    text = page(client, f"/ui/events/chain/{events[0]['correlation_id']}")
    # fleet_checkpoint_recorded was caused by checkpoint_created: it is nested under it.
    root = text.index("checkpoint_created")
    assert text.index('<ul class="tree">', root) < text.index("fleet_checkpoint", root)


def test_script_in_data_shows_as_text(client: FlaskClient) -> None:
    call = api_caller(client)
    ok(call, "POST", "/specialists/register", {"specialist_id": "mallory", "name": SCRIPT})
    ok(
        call,
        "POST",
        "/mailboxes/mallory/messages",
        {"message_type": "note", "content": {"text": SCRIPT}, "thread_id": SCRIPT[:20]},
    )
    for path in ("/ui/", "/ui/specialists", "/ui/specialists/mallory", "/ui/mailboxes/mallory"):
        text = page(client, path)
        assert "<script>alert" not in text, path
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page(
        client, "/ui/mailboxes/mallory"
    )
    assert "&lt;script&gt;" in page(client, "/ui/events?type=specialist_registered")


def test_actions_are_ui_commands_by_the_operator(client: FlaskClient, scenario: Scenario) -> None:
    csrf = csrf_of(client)
    docs = scenario.sorties["docs"]
    moved = post(
        client,
        f"/ui/sorties/{docs}/review",
        {"decision": "changes", "feedback": "add examples"},
        csrf,
    )
    assert moved.status_code == 303
    finished = ui_events(client, "review_completed")
    assert finished and finished[0]["data"]["feedback"] == "add examples"
    assert finished[0]["metadata"]["actor"] == "operator"
    ok(api_caller(client), "PATCH", f"/sorties/{docs}", {"status": "review", "reviewer_id": "bob"})
    post(client, f"/ui/sorties/{docs}/review", {"decision": "approve"}, csrf)
    assert ui_events(client, "sortie_completed")
    test = scenario.sorties["test"]  # assigned to carol; only unstarted work is reassigned
    post(client, f"/ui/sorties/{test}/reassign", {"assigned_to": "alice"}, csrf)
    assert ui_events(client, "sortie_assigned")[0]["data"]["specialist_id"] == "alice"
    post(client, f"/ui/sorties/{scenario.sorties['release']}/cancel", {"reason": "later"}, csrf)
    assert ui_events(client, "sortie_cancelled")
    post(client, "/ui/mailboxes/alice/send", {"body": "Go!", "thread_id": "t"}, csrf)
    sent = ui_events(client, "squawk_sent")
    assert sent[0]["data"]["sender_id"] == "overseer"
    assert sent[0]["data"]["content"] == {"text": "Go!"}
    post(client, f"/ui/locks/{scenario.lock_id}/release", {}, csrf)
    assert ui_events(client, "lock_released")[0]["data"]["specialist_id"] == "operator"
    post(client, "/ui/checkpoints", {"stream_id": scenario.mission_id}, csrf)
    (created,) = ui_events(client, "checkpoint_created")
    checkpoint_id = created["stream_id"]
    assert "I understand" in page(client, f"/ui/checkpoints/{checkpoint_id}/restore")
    unconfirmed = post(client, f"/ui/checkpoints/{checkpoint_id}/restore", {}, csrf)
    assert unconfirmed.status_code == 303
    assert "422 Validation failed" in page(client, "/ui/checkpoints")
    assert not ui_events(client, "checkpoint_restored")
    post(client, f"/ui/checkpoints/{checkpoint_id}/restore", {"confirm": "yes"}, csrf)
    assert ui_events(client, "checkpoint_restored")


def test_a_refused_command_is_shown_not_crashed(client: FlaskClient, scenario: Scenario) -> None:
    csrf = csrf_of(client)
    design = scenario.sorties["design"]  # completed: it cannot be approved again
    answer = post(client, f"/ui/sorties/{design}/review", {"decision": "approve"}, csrf)
    assert answer.status_code == 303
    shown = page(client, answer.headers["Location"])
    assert "409 Conflict" in shown


def test_posts_need_the_csrf_token(client: FlaskClient, scenario: Scenario) -> None:
    head = get_fleet(client.application).head_position()
    for token in (None, "forged"):
        data = {"body": "hi"} | ({"csrf_token": token} if token else {})
        answer = client.post("/ui/mailboxes/alice/send", data=data)
        assert answer.status_code == 400
        assert "CSRF" in answer.get_data(as_text=True)
    assert get_fleet(client.application).head_position() == head


def test_token_login_guards_actions(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(FLEET_API_TOKEN=TOKEN)
    client = app.test_client()
    call = api_caller(client, TOKEN)
    ok(call, "POST", "/specialists/register", {"specialist_id": "alice", "name": "A"})
    assert client.get("/ui/").status_code == 200  # reads are open without FLEET_AUTH_READS
    csrf = csrf_of(client, "/ui/login")
    head = get_fleet(app).head_position()
    refused = client.post("/ui/mailboxes/alice/send", data={"body": "x", "csrf_token": csrf})
    assert refused.status_code == 303 and "/ui/login" in refused.headers["Location"]
    assert get_fleet(app).head_position() == head
    bad = client.post("/ui/login", data={"operator": "olga", "token": "wrong", "csrf_token": csrf})
    assert bad.status_code == 401
    good = client.post(
        "/ui/login",
        data={"operator": "olga", "token": TOKEN, "csrf_token": csrf, "next": "/ui/locks"},
    )
    assert good.status_code == 303 and good.headers["Location"].endswith("/ui/locks")
    cookie = client.get_cookie("session")
    assert cookie is not None and TOKEN not in cookie.value
    csrf = csrf_of(client)  # a login starts a new session with a new CSRF token
    sent = client.post("/ui/mailboxes/alice/send", data={"body": "x", "csrf_token": csrf})
    assert sent.status_code == 303
    (event,) = get_fleet(app).events(type="squawk_sent")[0]
    assert event["metadata"]["actor"] == "olga" and event["metadata"]["source"] == "ui"
    client.post("/ui/logout", data={"csrf_token": csrf})
    assert client.post("/ui/login", data={"operator": "x", "token": TOKEN}).status_code == 400


def test_auth_reads_needs_login_to_read(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(FLEET_API_TOKEN=TOKEN, FLEET_AUTH_READS=True).test_client()
    answer = client.get("/ui/locks")
    assert answer.status_code == 303 and "/ui/login?next=/ui/locks" in answer.headers["Location"]
    assert client.get("/ui/feed").status_code == 303
    assert client.get("/ui/login").status_code == 200
    with client.get("/ui/static/console.css") as style:  # the page's style is no secret
        assert style.status_code == 200
    csrf = csrf_of(client, "/ui/login")
    client.post("/ui/login", data={"operator": "o", "token": TOKEN, "csrf_token": csrf})
    assert client.get("/ui/locks").status_code == 200


def test_login_redirects_only_inside_the_console(client: FlaskClient) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/api/v1/events"):
        csrf = csrf_of(client, "/ui/login")  # each login starts a fresh session
        answer = client.post(
            "/ui/login", data={"operator": "o", "token": "", "csrf_token": csrf, "next": target}
        )
        assert answer.headers["Location"] == "/ui/", target


def test_write_rate_counts_each_event_once(client: FlaskClient, scenario: Scenario) -> None:
    fleet = get_fleet(client.application)
    head = fleet.head_position()
    minutes = fleet.write_rate()
    assert len(minutes) == 60 and sum(m["events"] for m in minutes) == head
    assert minutes[-1]["events"] + minutes[-2]["events"] > 0  # written this minute or the last
    later = fleet.write_rate(now=datetime.now(UTC) + timedelta(hours=2))
    assert sum(m["events"] for m in later) == 0  # an hour with no writes
    again = fleet.write_rate()  # past minutes come from the cache now: the same answer
    assert sum(m["events"] for m in again) == head


def test_overview_counts(shown_client: FlaskClient, shown_scenario: Scenario) -> None:
    fleet = get_fleet(shown_client.application)
    assert fleet.status_counts("sorties") == {
        "assigned": 1,
        "completed": 1,
        "in_progress": 1,
        "pending": 1,
        "review": 1,
    }
    assert fleet.unread_by_mailbox() == [
        {"mailbox_id": "alice", "unread": 2},
        {"mailbox_id": "bob", "unread": 1},
    ]
    overview = fleet.overview()
    assert overview["active_locks"] == 1 and overview["max_lag"] == 0


def console_rules(app: Flask, method: str) -> list[Rule]:
    """Every console route taking ``method``, found in the url_map (never listed by hand)."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("ui.") and method in (rule.methods or set())
    ]


def filled(rule: Rule) -> str:
    return (
        rule.rule.replace("<path:filename>", "console.css")
        .replace("<", "no-such-")
        .replace(">", "")
    )


def test_no_console_post_writes_without_login_and_csrf(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(FLEET_API_TOKEN=TOKEN, FLEET_AUTH_READS=True)
    client = app.test_client()
    rules = console_rules(app, "POST")
    assert len(rules) >= 9, [r.rule for r in rules]
    head = get_fleet(app).head_position()
    for rule in rules:
        forged = client.post(filled(rule), data={"confirm": "yes", "csrf_token": "forged"})
        assert forged.status_code == 400, rule.rule
    csrf = csrf_of(client, "/ui/login")  # a real session's token, but no login yet
    for rule in rules:
        if rule.endpoint in ("ui.login", "ui.logout"):
            continue
        answer = client.post(filled(rule), data={"confirm": "yes", "csrf_token": csrf})
        assert answer.status_code == 303, rule.rule
        assert answer.headers["Location"].startswith("/ui/login"), rule.rule
    assert get_fleet(app).head_position() == head
    for rule in console_rules(app, "GET"):
        if rule.endpoint in ("ui.login", "ui.static"):
            continue
        answer = client.get(filled(rule))
        assert answer.status_code == 303 and "/ui/login" in answer.headers["Location"], rule.rule


def test_time_travel_reads_times_and_refuses_bad_ones(
    shown_client: FlaskClient, shown_scenario: Scenario
) -> None:
    docs = shown_scenario.sorties["docs"]
    created = get_fleet(shown_client.application).get_sortie(docs, version=1)["created_at"]
    naive = created.replace("Z", "").split("+")[0]  # no zone: read as UTC
    assert "Showing version 1" in page(shown_client, f"/ui/sorties/{docs}?as_of={naive}")
    refused = page(shown_client, f"/ui/sorties/{docs}?as_of=yesterday", 422)
    assert "2026-01-01T12:00:00Z" in refused


def test_the_mailbox_picker_goes_to_the_mailbox(shown_client: FlaskClient) -> None:
    answer = shown_client.get("/ui/mailboxes?mailbox=+alice+")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/ui/mailboxes/alice")


def test_an_unknown_review_decision_is_refused(
    shown_client: FlaskClient, shown_scenario: Scenario
) -> None:
    csrf = csrf_of(shown_client)
    docs = shown_scenario.sorties["docs"]  # in review
    answer = post(shown_client, f"/ui/sorties/{docs}/review", {"decision": "maybe"}, csrf)
    assert answer.status_code == 400


def test_the_live_feed_announces_new_events(client: FlaskClient) -> None:
    """The pages' EventSource: a comment first, then one frame per event after it opened."""
    answer = client.get("/ui/feed", buffered=False)
    try:
        assert answer.mimetype == "text/event-stream"
        assert answer.headers["Cache-Control"] == "no-cache"
        chunks = iter(answer.response)
        assert next(chunks) == b": fleet console feed\n\n"
        written = get_fleet(client.application).create_mission("Fed")
        frame = next(chunks).decode()
        assert frame.startswith("id: ") and "event: change" in frame
        assert json.loads(frame.split("data: ", 1)[1]) == {
            "type": "mission_created",
            "stream_id": written["id"],
        }
    finally:
        answer.close()


def test_only_the_console_opens_its_session_cookie(shown_app: tuple[Flask, Scenario]) -> None:
    app, _ = shown_app
    sessions = app.session_interface
    for path, console in (("/ui/", True), ("/ui/missions", True), ("/api/v1/specialists", False)):
        with app.test_request_context(path):
            opened = sessions.open_session(app, request)
            assert opened is not None
            assert sessions.is_null_session(opened) is not console, path
