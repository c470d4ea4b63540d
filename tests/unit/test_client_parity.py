"""``FleetClient`` mirrors ``Fleet``: a new public service method needs its HTTP counterpart."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from application.client import FleetClient
from application.fleet import Fleet

# Public Fleet methods that belong to the process holding the store, not to a remote caller.
PROCESS_LOCAL = {
    # in-process plumbing: correlation scope, write listeners (a client sets its correlation
    # with FleetClient(correlation_id=...))
    "context": "contextvars scope of this process",
    "on_events_recorded": "listeners of this process's own writes",
    "stop_waits": "ends the waits of this process's requests (its shutdown)",
    # background jobs the serving process runs itself (`fleet projector`, `fleet sweep`)
    "sweep": "operator job, no HTTP route",
    "sweep_forever": "operator job loop",
    "start_sweeper": "operator job thread",
    "stop_sweeper": "operator job thread",
    "compact_forever": "operator job loop",
    "start_compactor": "operator job thread",
    "stop_compactor": "operator job thread",
    "purge_idempotency_keys": "operator job (`fleet sweep` purges expired keys)",
    # helpers of the services and their settings, public for the web layer and the jobs
    "heartbeat_timeout": "a setting of the sweeping process",
    "compaction_policy": "a setting of the compacting process",
    "now": "the lock clock tests of this process set",
    "check_version": "service helper",
    "row_resource": "projection row helper",
    # read models of the operator console (/ui/), which renders in the server process; the
    # HTTP API has no route for them (yet): a remote caller reads the lists instead
    "overview": "console read model",
    "status_counts": "console read model",
    "unread_by_mailbox": "console read model",
    "write_rate": "console read model",
    "mailboxes": "console read model",
}
DOOR_SCENARIOS = Path(__file__).resolve().parents[1] / "integration" / "test_doors.py"
# Keyword arguments only a process holding the store can honour.
LOCAL_ARGUMENTS = {
    "compact": {"archive", "now"},  # archiving is `fleet compact --archive`; now: a test clock
    "create_checkpoint": {"trigger"},  # the contract: API-created checkpoints are manual
    "follow": {"idle"},  # the keep-alive interval is the server's FLEET_STREAM_IDLE_SECONDS
}


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_public_fleet_method_has_a_client_counterpart() -> None:
    fleet, client = public_methods(Fleet), public_methods(FleetClient)
    missing = sorted(set(fleet) - set(client) - set(PROCESS_LOCAL))
    assert not missing, f"FleetClient lacks {missing}: add them (or justify in PROCESS_LOCAL)"
    stale = sorted(name for name in PROCESS_LOCAL if name not in fleet)
    assert not stale, f"PROCESS_LOCAL names methods Fleet no longer has: {stale}"


def test_counterparts_take_the_same_arguments_with_the_same_defaults() -> None:
    fleet, client = public_methods(Fleet), public_methods(FleetClient)
    for name in sorted(set(fleet) & set(client)):
        ours = {n: p for n, p in fleet[name].parameters.items() if n != "self"}
        theirs = {n: p for n, p in client[name].parameters.items() if n != "self"}
        expected = {n: p for n, p in ours.items() if n not in LOCAL_ARGUMENTS.get(name, set())}
        assert list(theirs) == list(expected), name
        for arg, param in expected.items():
            assert theirs[arg].default == param.default, f"{name}({arg}=...)"
            assert theirs[arg].kind == param.kind, f"{name}({arg}) kind"


def test_the_door_scenarios_call_every_counterpart() -> None:
    """Each shared method runs through both doors in ``test_doors.py`` (``close``: its fixture)."""
    called = set(re.findall(r"fleet_door\.(\w+)\(", DOOR_SCENARIOS.read_text()))
    missing = sorted(set(public_methods(FleetClient)) - called - {"close"})
    assert not missing, f"no door scenario calls {missing}"
