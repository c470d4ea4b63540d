"""The OpenAPI document: served, complete, and faithful to what the API answers."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application import Fleet
from tests.api.support import API, body, mission, register, sortie
from web import extensions, get_fleet

# The one operation without a Fleet method of its own name: POST works like PATCH there.
NOT_FLEET_METHODS = {"heartbeat_by_post"}
# The flows the document links, as (from, to) operationIds.
FLOWS = {
    ("register_specialist", "heartbeat"),
    ("create_sortie", "update_sortie"),
    ("acquire_lock", "release_lock"),
    ("send_message", "read_message"),
    ("read_message", "ack_message"),
    ("create_mission", "update_mission"),
    ("create_checkpoint", "restore_checkpoint"),
}

CONTRACT = {
    ("post", "/specialists/register"),
    ("get", "/specialists/{specialist_id}"),
    ("get", "/specialists"),
    ("patch", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/complete"),
    ("post", "/specialists/{specialist_id}/fail"),
    ("delete", "/specialists/{specialist_id}"),
    ("post", "/missions"),
    ("get", "/missions/{mission_id}"),
    ("get", "/missions"),
    ("patch", "/missions/{mission_id}"),
    ("post", "/sorties"),
    ("get", "/sorties/{sortie_id}"),
    ("get", "/sorties"),
    ("patch", "/sorties/{sortie_id}"),
    ("post", "/checkpoints"),
    ("get", "/checkpoints/{checkpoint_id}"),
    ("get", "/checkpoints"),
    ("post", "/checkpoints/{checkpoint_id}/restore"),
    ("post", "/mailboxes/{mailbox_id}/messages"),
    ("get", "/mailboxes/{mailbox_id}/messages"),
    ("get", "/messages/{message_id}"),
    ("post", "/messages/{message_id}/read"),
    ("post", "/messages/{message_id}/ack"),
    ("post", "/messages/{message_id}/archive"),
    ("post", "/messages/{message_id}/requeue"),
    ("post", "/cursors/advance"),
    ("post", "/cursors/reset"),
    ("get", "/cursors/{cursor_id}"),
    ("post", "/locks/acquire"),
    ("post", "/locks/{lock_id}/release"),
    ("get", "/locks"),
    ("get", "/locks/{lock_id}"),
    ("get", "/events"),
    ("get", "/events/{position}"),
    ("get", "/streams/{stream_id}/events"),
    ("post", "/compaction"),
    # The agent work loop
    ("post", "/sorties/claim"),
    ("get", "/events/stream"),
}
CONDITIONAL = {
    ("post", "/specialists/register"),
    ("post", "/checkpoints/{checkpoint_id}/restore"),
    ("patch", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/complete"),
    ("post", "/specialists/{specialist_id}/fail"),
    ("delete", "/specialists/{specialist_id}"),
    ("patch", "/missions/{mission_id}"),
    ("patch", "/sorties/{sortie_id}"),
    ("post", "/mailboxes/{mailbox_id}/messages"),
    ("post", "/messages/{message_id}/read"),
    ("post", "/messages/{message_id}/ack"),
    ("post", "/messages/{message_id}/archive"),
    ("post", "/messages/{message_id}/requeue"),
    ("post", "/cursors/advance"),
    ("post", "/cursors/reset"),
    ("post", "/locks/{lock_id}/release"),
}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"{API}/openapi.json")
    assert response.mimetype == "application/json"
    return body(response, 200)  # type: ignore[no-any-return]


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path.removeprefix(API)): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def test_every_contract_operation_is_documented(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.0.3"
    assert set(operations(spec)) == CONTRACT


def test_every_operation_documents_its_answers(spec: dict[str, Any]) -> None:
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for response in spec["components"]["responses"].values():
        assert response["content"] == {"application/problem+json": {"schema": problem_ref}}
    for (method, path), operation in operations(spec).items():
        statuses = set(operation["responses"])
        assert {"400", "401"} <= statuses, (method, path)
        assert operation["summary"], (method, path)
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "X-Correlation-ID" in headers
        success = operation["responses"].get("201") or operation["responses"]["200"]
        if method != "get":
            assert {"413", "422"} & statuses or method == "delete", (method, path)
            assert "X-Fleet-Position" in success["headers"], (method, path)
        if (method, path) in CONDITIONAL:
            assert "If-Match" in headers and "412" in statuses, (method, path)
        elif method != "get":
            assert "If-Match" not in headers, (method, path)
        if method == "get" and path.endswith("}") and "events" not in path:  # one resource
            assert "ETag" in success["headers"], (method, path)


def test_request_schemas_refuse_unknown_fields(spec: dict[str, Any]) -> None:
    for (method, path), operation in operations(spec).items():
        if "requestBody" in operation:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
            assert schema["additionalProperties"] is False, (method, path)


def test_no_ui_that_needs_a_cdn(client: FlaskClient) -> None:
    for path in ("swagger-ui", "redoc", "rapidoc"):
        assert client.get(f"{API}/{path}").status_code == 404


def test_answers_carry_every_member_the_services_give(app: Flask, client: FlaskClient) -> None:
    """The response schemas dump the service dicts: none of their members may be lost."""
    fleet = get_fleet(app)
    register(client, "s1")
    m = mission(client)
    s = sortie(client, mission_id=m["id"])
    c = body(client.post(f"{API}/checkpoints", json={"stream_id": m["id"]}), 201)["checkpoint"]
    pairs = [
        (fleet.get_specialist("s1"), client.get(f"{API}/specialists/s1"), "specialist"),
        (fleet.get_mission(m["id"]), client.get(f"{API}/missions/{m['id']}"), "mission"),
        (fleet.get_sortie(s["id"]), client.get(f"{API}/sorties/{s['id']}"), "sortie"),
        (fleet.get_checkpoint(c["id"]), client.get(f"{API}/checkpoints/{c['id']}"), "checkpoint"),
        (fleet.get_event(1), client.get(f"{API}/events/1"), "event"),
    ]
    for given, response, key in pairs:
        assert body(response, 200)[key] == given, key


def test_every_operation_id_is_its_fleet_method(spec: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for operation in operations(spec).values()]
    assert len(set(ids)) == len(ids) == len(CONTRACT), ids
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", operation_id or ""), operation_id
        if operation_id not in NOT_FLEET_METHODS:
            assert callable(getattr(Fleet, operation_id, None)), operation_id


def view_functions(app: Flask) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(method, OpenAPI path, view method) of every API operation."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API) or rule.rule.endswith("openapi.json"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule).removeprefix(API)
        view = app.view_functions[rule.endpoint].view_class  # type: ignore[attr-defined]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method.lower(), path, getattr(view, method.lower())


def test_if_match_is_declared_where_it_is_honoured(app: Flask, spec: dict[str, Any]) -> None:
    """A view honours If-Match when it reads it: ``if_match()``, ``answer_command()``, or
    a helper of its module that calls one of them."""
    documented = operations(spec)
    seen = 0
    for method, path, view in view_functions(app):
        module = inspect.getmodule(inspect.unwrap(view))
        readers = {"if_match(", "answer_command("}
        readers |= {
            f"{name}("
            for name, helper in vars(module).items()
            if inspect.isfunction(helper)
            and helper.__module__ == getattr(module, "__name__", None)
            and any(r in inspect.getsource(helper) for r in readers)
        }
        source = inspect.getsource(inspect.unwrap(view))
        honours = any(reader in source for reader in readers)
        names = {p["name"] for p in documented[(method, path)].get("parameters", [])}
        assert ("If-Match" in names) == honours, (method, path)
        assert ("412" in documented[(method, path)]["responses"]) == honours, (method, path)
        seen += honours
    assert seen == len(CONDITIONAL)


def test_nullable_objects_are_nullable_references(spec: dict[str, Any]) -> None:
    nullable_refs = 0
    for name, schema in spec["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            assert "anyOf" not in prop, (name, field, prop)
            if "allOf" in prop:
                assert prop["nullable"] is True and len(prop["allOf"]) == 1, (name, field)
                assert prop["allOf"][0]["$ref"].startswith("#/components/schemas/")
                nullable_refs += 1
    sortie = spec["components"]["schemas"]["Sortie"]["properties"]
    for field, target in (("review", "Review"), ("blocker", "Blocker")):
        assert sortie[field] == {
            "allOf": [{"$ref": f"#/components/schemas/{target}"}],
            "nullable": True,
        }
    assert nullable_refs >= 2


def test_patch_bodies_need_a_property(client: FlaskClient, spec: dict[str, Any]) -> None:
    """Where an empty PATCH body is refused, the document says so (minProperties: 1);
    a heartbeat with no fields is a heartbeat, and its body may be empty."""
    register(client, "s1")
    urls = {
        "/missions/{mission_id}": f"{API}/missions/{mission(client)['id']}",
        "/sorties/{sortie_id}": f"{API}/sorties/{sortie(client)['id']}",
        "/specialists/{specialist_id}/heartbeat": f"{API}/specialists/s1/heartbeat",
    }
    patches = {path: op for (method, path), op in operations(spec).items() if method == "patch"}
    assert set(patches) == set(urls)
    for path, operation in patches.items():
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        refused = client.patch(urls[path], json={}).status_code == 422
        assert (schema.get("minProperties") == 1) == refused, path


def test_main_flows_are_linked(spec: dict[str, Any]) -> None:
    by_id = {op["operationId"]: (path, op) for (_, path), op in operations(spec).items()}
    linked = set()
    for source, (_, operation) in by_id.items():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values() if isinstance(response, dict) else ():
                target_path, _ = by_id[link["operationId"]]
                for name, expression in link["parameters"].items():
                    assert "{" + name + "}" in target_path, (source, link)
                    assert expression.startswith("$response.body#/"), expression
                linked.add((source, link["operationId"]))
    assert linked >= FLOWS


def test_bearer_auth_is_declared_where_the_server_asks_for_it(
    app_factory: Callable[..., Flask],
) -> None:
    """As the server checks it: writes need the token, reads too with FLEET_AUTH_READS;
    a server without a token declares it optional (``{}`` beside it)."""
    bearer, optional = [{"bearerAuth": []}], [{"bearerAuth": []}, {}]
    cases = [
        ({}, optional, []),
        ({"FLEET_API_TOKEN": "t"}, bearer, []),
        ({"FLEET_API_TOKEN": "t", "FLEET_AUTH_READS": True}, bearer, bearer),
    ]
    for config, writes, reads in cases:
        app = app_factory(**config)
        client = app.test_client()
        headers = {"Authorization": "Bearer t"} if "FLEET_API_TOKEN" in config else {}
        declared = {
            key: op["security"]
            for key, op in operations(
                body(client.get(f"{API}/openapi.json", headers=headers), 200)
            ).items()
        }
        assert set(declared) == CONTRACT
        for (method, path), security in declared.items():
            assert security == (reads if method == "get" else writes), (config, method, path)
        unauthenticated = client.post(f"{API}/missions", json={"title": "t"}).status_code
        assert (unauthenticated == 401) == (writes == bearer)
        listed = client.get(f"{API}/missions").status_code
        assert (listed == 401) == (reads == bearer)


def handlers(app: Flask) -> dict[str, str]:
    """The app's error handlers: which exception goes to which function."""
    return {
        error.__name__: getattr(handler, "__qualname__", repr(handler))
        for by_code in app.error_handler_spec[None].values()
        for error, handler in by_code.items()
    }


def api_of(app: Flask) -> extensions.Api:
    api: extensions.Api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return api


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"FLEET_API_TOKEN": "t"},
        {"FLEET_AUTH_READS": True},
        {"FLEET_API_TOKEN": "t", "FLEET_AUTH_READS": True},
        {"API_TITLE": "Other", "API_SPEC_OPTIONS": {"info": {"description": "other"}}},
    ],
    ids=["open", "token", "auth-reads-no-token", "token-auth-reads", "other-settings"],
)
def test_a_shared_document_is_what_a_fresh_build_gives(
    app_factory: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]
) -> None:
    """Apps built with the same settings share one OpenAPI document, built once per process
    (``web.extensions.BUILT_SPECS``): it must be the very document, and the very app, that a
    build from scratch gives."""
    headers = {"Authorization": "Bearer t"} if "FLEET_API_TOKEN" in config else {}

    def served(app: Flask) -> str:
        return app.test_client().get(f"{API}/openapi.json", headers=headers).get_data(as_text=True)

    app_factory(**config)  # the document for these settings is built by now
    shared = app_factory(**config)
    monkeypatch.setattr(extensions, "BUILT_SPECS", {})  # nothing built yet: from scratch
    fresh = app_factory(**config)
    assert api_of(fresh).spec is not api_of(shared).spec
    assert extensions.BUILT_SPECS  # the fresh one is kept for the next app
    assert served(shared) == served(fresh)
    document = json.loads(served(fresh))
    assert document["info"]["title"] == config.get("API_TITLE", "Fleet")
    assert json.dumps(api_of(shared).spec.to_dict()) == json.dumps(api_of(fresh).spec.to_dict())
    # and the rest of the app is the same: routes, converters, handlers, CLI commands
    assert [(r.rule, r.endpoint, sorted(r.methods or ())) for r in shared.url_map.iter_rules()] == [
        (r.rule, r.endpoint, sorted(r.methods or ())) for r in fresh.url_map.iter_rules()
    ]
    assert extensions.IdConverter in api_of(shared).flask_plugin.converter_mapping
    assert api_of(shared)._app is shared
    assert sorted(shared.extensions["flask-smorest"]["blp_name_to_api"]) == sorted(
        fresh.extensions["flask-smorest"]["blp_name_to_api"]
    )
    assert handlers(shared) == handlers(fresh)
    assert sorted(shared.cli.commands) == sorted(fresh.cli.commands)


def test_apps_with_other_settings_get_their_own_document(
    app_factory: Callable[..., Flask],
) -> None:
    open_app = app_factory()
    token_app = app_factory(**{"FLEET_API_TOKEN": "t"})
    assert api_of(open_app).spec is api_of(app_factory()).spec
    assert api_of(token_app).spec is not api_of(open_app).spec
