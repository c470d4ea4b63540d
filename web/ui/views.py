"""Console pages and actions. Reads call Fleet's queries; each action is one Fleet command.

Actions are post/redirect/get: a form posts, the command runs as the logged-in operator
(``metadata.source`` "ui"), and the answer is a 303 back to the page with the outcome
flashed on it, an error included (its HTTP status and message), never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from application.errors import FleetError, ValidationError
from application.registry import event_types
from application.services.locks import LOCK_STATUS_FILTERS
from domain.mailbox import DEFAULT_MESSAGE_PRIORITY, MESSAGE_PRIORITIES
from domain.sortie import LIFECYCLE as SORTIE_LIFECYCLE
from domain.sortie import SORTIE_STATUSES
from domain.specialist import specialist_stream_id
from web.request_cycle import fleet
from web.ui import auth
from web.ui.draw import STATUS_COLOURS, bar_chart, sortie_graph

blueprint = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE = 50
OVERSEER = "overseer"  # who the console's messages are from
FEED_IDLE = 2.0  # seconds: a closed page's feed is noticed at its next keep-alive
PUBLIC = ("ui.login", "ui.static")
# The send form's priorities: the default first (what the select shows), then the others.
SEND_PRIORITIES = (
    DEFAULT_MESSAGE_PRIORITY,
    *(p for p in MESSAGE_PRIORITIES if p != DEFAULT_MESSAGE_PRIORITY),
)

Redirect = BaseResponse


def init_app(app: Flask) -> None:
    app.secret_key = auth.secret_key(app)
    app.session_interface = auth.ConsoleSessions(f"{blueprint.url_prefix}/")
    app.register_blueprint(blueprint)


@blueprint.app_template_global()
def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "#ffffff")


@blueprint.app_template_filter("pretty")
def pretty(value: Any) -> str:
    """JSON for people; a plain string, so the template escapes it like any text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@blueprint.context_processor
def inject() -> dict[str, Any]:
    return auth.template_globals()


@blueprint.before_request
def guard() -> Redirect | None:
    """Reads follow FLEET_AUTH_READS; every POST needs its CSRF token and, with a token
    configured, a login."""
    if request.endpoint == "ui.static":
        return None
    if request.method == "POST":
        auth.check_csrf()
        if request.endpoint not in PUBLIC and not auth.logged_in():
            flash("Log in with the API token to act on the fleet.", "error")
            return redirect(url_for("ui.login", next=back_to()), 303)
    elif request.endpoint not in PUBLIC and not auth.may_read():
        return redirect(url_for("ui.login", next=request.full_path.rstrip("?")), 303)
    return None


@blueprint.errorhandler(FleetError)
def fleet_error(error: FleetError) -> tuple[str, int]:
    return render_template("ui/error.html", status=error.status, message=str(error)), error.status


@blueprint.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    return render_template("ui/error.html", status=status, message=error.description), status


def safe_next(target: str | None) -> str:
    """Only a console path is a place to go back to (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return url_for("ui.overview")


def back_to() -> str:
    return safe_next(request.form.get("next") or referrer_path())


def referrer_path() -> str | None:
    """The console page the form was on (path and query of the Referer)."""
    referrer = request.referrer or ""
    host = request.host_url.rstrip("/")
    return referrer[len(host) :] if referrer.startswith(host) else None


def act(do: Callable[[], Any], done: str, target: str | None = None) -> Redirect:
    """Run one command as the operator; flash its outcome; 303 back to the page."""
    try:
        with fleet().context(
            correlation_id=g.correlation_id,
            actor=auth.operator(),
            request_id=g.request_id,
            source="ui",
        ):
            do()
    except FleetError as exc:
        flash(f"{exc.status} {exc.title}: {exc}", "error")
    else:
        flash(done, "ok")
    return redirect(safe_next(target) if target else back_to(), 303)


def text_field(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    return value or None


def as_of_arg() -> tuple[int | None, datetime | None]:
    """The time-travel control: ``version`` or ``as_of`` (ISO time; UTC when naive)."""
    errors: dict[str, list[str]] = {}
    version: int | None = None
    as_of: datetime | None = None
    raw_version = request.args.get("version", "").strip()
    raw_as_of = request.args.get("as_of", "").strip()
    if raw_version:
        if raw_version.isdigit() and int(raw_version) >= 1:
            version = int(raw_version)
        else:
            errors["version"] = ["must be a whole number, 1 or more"]
    if raw_as_of:
        try:
            as_of = datetime.fromisoformat(raw_as_of.replace("Z", "+00:00"))
        except ValueError:
            errors["as_of"] = ["must be a time like 2026-01-01T12:00:00Z"]
        else:
            if as_of.tzinfo is None:
                as_of = as_of.replace(tzinfo=UTC)
    if errors:
        raise ValidationError(errors)
    return version, as_of


# ---- reads ----


@blueprint.get("/")
def overview() -> str:
    data = fleet().overview()
    return render_template("ui/overview.html", o=data, chart=bar_chart(data["write_rate"]))


@blueprint.get("/specialists")
def specialists() -> str:
    status = request.args.get("status") or None
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    rows, total = fleet().list_specialists(status=status, limit=PAGE, offset=offset)
    return render_template(
        "ui/specialists.html",
        specialists=rows,
        total=total,
        offset=offset,
        status=status,
        counts=fleet().status_counts("specialists"),
        page=PAGE,
    )


@blueprint.get("/specialists/<specialist_id>")
def specialist(specialist_id: str) -> str:
    version, as_of = as_of_arg()
    current = fleet().get_specialist(specialist_id)
    shown = fleet().get_specialist(specialist_id, version=version, as_of=as_of)
    timeline = fleet().stream_events(str(specialist_stream_id(specialist_id)))
    sorties, _ = fleet().list_sorties(assigned_to=specialist_id, limit=PAGE)
    return render_template(
        "ui/specialist.html",
        s=shown,
        current=current,
        history=timeline,
        sorties=sorties,
        travelled=version is not None or as_of is not None,
    )


@blueprint.get("/missions")
def missions() -> str:
    status = request.args.get("status") or None
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    rows, total = fleet().list_missions(status=status, limit=PAGE, offset=offset)
    return render_template(
        "ui/missions.html", missions=rows, total=total, offset=offset, status=status, page=PAGE
    )


@blueprint.get("/missions/<mission_id>")
def mission(mission_id: str) -> str:
    found = fleet().get_mission(mission_id)
    sorties = fleet().mission_sorties(mission_id)
    titles = {s["id"]: s["title"] or s["id"][:8] for s in sorties}
    checkpoints, _ = fleet().list_checkpoints(stream_id=mission_id, limit=PAGE)
    return render_template(
        "ui/mission.html",
        m=found,
        sorties=sorties,
        titles=titles,
        graph=sortie_graph(sorties),
        checkpoints=checkpoints,
        sortie_statuses=SORTIE_STATUSES,
    )


@blueprint.get("/sorties/<sortie_id>")
def sortie(sortie_id: str) -> str:
    version, as_of = as_of_arg()
    current = fleet().get_sortie(sortie_id)
    shown = fleet().get_sortie(sortie_id, version=version, as_of=as_of)
    timeline = fleet().stream_events(sortie_id)
    specialists_, _ = fleet().list_specialists(limit=200)
    return render_template(
        "ui/sortie.html",
        s=shown,
        current=current,
        history=timeline,
        specialists=specialists_,
        travelled=version is not None or as_of is not None,
        next_statuses=SORTIE_LIFECYCLE.allowed(current["status"]),
    )


@blueprint.get("/mailboxes")
def mailboxes() -> str | Redirect:
    wanted = (request.args.get("mailbox") or "").strip()
    if wanted:
        return redirect(url_for("ui.mailbox", mailbox_id=wanted), 303)
    return render_template("ui/mailboxes.html", mailboxes=fleet().mailboxes())


@blueprint.get("/mailboxes/<mailbox_id>")
def mailbox(mailbox_id: str) -> str:
    status = request.args.get("status") or None
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    messages, total = fleet().list_messages(mailbox_id, status=status, limit=PAGE, offset=offset)
    return render_template(
        "ui/mailbox.html",
        mailbox_id=mailbox_id,
        messages=messages,
        total=total,
        offset=offset,
        status=status,
        page=PAGE,
        priorities=SEND_PRIORITIES,
    )


@blueprint.get("/locks")
def locks() -> str:
    status = request.args.get("status") or "active"
    rows, total = fleet().list_locks(status=status, limit=PAGE)
    return render_template(
        "ui/locks.html", locks=rows, total=total, status=status, statuses=LOCK_STATUS_FILTERS
    )


@blueprint.get("/checkpoints")
def checkpoints() -> str:
    rows, total = fleet().list_checkpoints(limit=PAGE, offset=0)
    return render_template("ui/checkpoints.html", checkpoints=rows, total=total)


@blueprint.get("/checkpoints/<checkpoint_id>/restore")
def confirm_restore(checkpoint_id: str) -> str:
    return render_template("ui/restore.html", c=fleet().get_checkpoint(checkpoint_id))


@blueprint.get("/events")
def events() -> str:
    """Newest first: page 0 is the last ``PAGE`` events matching the filters."""
    filters: dict[str, Any] = {
        "type": request.args.get("type") or None,
        "stream_id": request.args.get("stream_id") or None,
        "correlation_id": request.args.get("correlation_id") or None,
    }
    page = max(request.args.get("page", 0, type=int) or 0, 0)
    _, total = fleet().events(**filters, limit=1)
    end = max(total - page * PAGE, 0)
    start = max(end - PAGE, 0)
    rows: list[dict[str, Any]] = []
    if end > start:
        rows, _ = fleet().events(**filters, limit=end - start, offset=start)
    query = {k: v for k, v in filters.items() if v}
    return render_template(
        "ui/events.html",
        events=list(reversed(rows)),
        total=total,
        filters=filters,
        page=page,
        more=start > 0,
        query=urlencode(query),
        types=event_types(),
    )


@blueprint.get("/events/chain/<correlation_id>")
def chain(correlation_id: str) -> str:
    """The correlation's events as the tree their causation ids make."""
    rows, total = fleet().events(correlation_id=correlation_id, limit=1000)
    by_id = {e["event_id"]: e for e in rows}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for event in rows:
        parent = event["causation_id"] if event["causation_id"] in by_id else None
        children.setdefault(parent, []).append(event)
    return render_template(
        "ui/chain.html",
        correlation_id=correlation_id,
        children=children,
        total=total,
    )


@blueprint.get("/feed")
def feed() -> Response:
    """Server-Sent Events for the pages' live refresh, under the console's own login
    (an EventSource cannot send the API's bearer header)."""
    source = fleet().follow(after=fleet().head_position(), idle=FEED_IDLE)

    def lines() -> Iterator[str]:
        yield ": fleet console feed\n\n"
        for event in source:
            if event is None:
                yield ": keep-alive\n\n"
                continue
            data = json.dumps({"type": event["event_type"], "stream_id": event["stream_id"]})
            yield f"id: {event['id']}\nevent: change\ndata: {data}\n\n"

    response = Response(lines(), mimetype="text/event-stream")
    response.call_on_close(source.close)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


# ---- login ----


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> str | Redirect | tuple[str, int]:
    target = safe_next(request.values.get("next"))
    if request.method == "POST":
        name = (request.form.get("operator") or "").strip()[:128]
        if auth.log_in(name, request.form.get("token", "")):
            flash(f"Logged in as {auth.operator()}.", "ok")
            return redirect(target, 303)
        flash("401 Unauthorized: that token is not the server's API token.", "error")
        return render_template("ui/login.html", next=target), 401
    return render_template("ui/login.html", next=target)


@blueprint.post("/logout")
def logout() -> Redirect:
    auth.log_out()
    return redirect(url_for("ui.overview"), 303)


# ---- actions ----


@blueprint.post("/sorties/<sortie_id>/review")
def review(sortie_id: str) -> Redirect:
    feedback = text_field("feedback")
    if request.form.get("decision") == "approve":
        return act(
            lambda: fleet().update_sortie(sortie_id, status="completed", feedback=feedback),
            "Approved: the sortie is completed.",
        )
    if request.form.get("decision") == "changes":
        return act(
            lambda: fleet().update_sortie(
                sortie_id, status="in_progress", verdict="needs_changes", feedback=feedback
            ),
            "Changes requested: the sortie is back in progress.",
        )
    abort(400, "decision must be approve or changes")


@blueprint.post("/sorties/<sortie_id>/reassign")
def reassign(sortie_id: str) -> Redirect:
    specialist_id = text_field("assigned_to") or ""
    return act(
        lambda: fleet().update_sortie(sortie_id, status="assigned", assigned_to=specialist_id),
        f"Reassigned to {specialist_id}.",
    )


@blueprint.post("/sorties/<sortie_id>/cancel")
def cancel(sortie_id: str) -> Redirect:
    reason = text_field("reason")
    return act(
        lambda: fleet().update_sortie(sortie_id, status="cancelled", reason=reason),
        "Cancelled.",
    )


@blueprint.post("/mailboxes/<mailbox_id>/send")
def send(mailbox_id: str) -> Redirect:
    body = request.form.get("body", "")
    return act(
        lambda: fleet().send_message(
            mailbox_id,
            message_type=text_field("message_type") or "note",
            content={"text": body},
            sender_id=OVERSEER,
            thread_id=text_field("thread_id"),
            priority=text_field("priority"),
        ),
        f"Sent to {mailbox_id} as {OVERSEER}.",
    )


@blueprint.post("/locks/<lock_id>/release")
def release(lock_id: str) -> Redirect:
    return act(
        lambda: fleet().release_lock(lock_id, auth.operator(), force=True),
        "Lock released (forced).",
    )


@blueprint.post("/checkpoints")
def create_checkpoint() -> Redirect:
    stream_id = text_field("stream_id") or ""
    return act(
        lambda: fleet().create_checkpoint(stream_id, description=text_field("description")),
        "Checkpoint created.",
    )


@blueprint.post("/checkpoints/<checkpoint_id>/restore")
def restore(checkpoint_id: str) -> Redirect:
    confirmed = request.form.get("confirm") == "yes"
    return act(
        lambda: fleet().restore_checkpoint(checkpoint_id, confirm=confirmed),
        "Checkpoint restored.",
        target=url_for("ui.checkpoints"),
    )
