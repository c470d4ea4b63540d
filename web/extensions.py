"""Project subclasses of flask-smorest's ``Api`` and ``Blueprint``.

``Api`` documents and answers every error as problem+json (``web.problems``).
``Blueprint`` parses with Fleet's body rules, guards each request (auth, body size)
and documents what every operation shares: the id headers, 400 and 401.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar, NamedTuple

import flask_smorest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask import Flask, Response
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule

from application.errors import STORE_UNAVAILABLE, FleetError
from application.seams import (
    SharedBuilderSeam,
    SharedSpecSeam,
    add_doc_callback,
    doc_info,
    set_doc_info,
)
from web import problems, request_cycle, settings
from web.parser import Parser
from web.schemas import AnswerSchema, ProblemSchema

ID_HEADER_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"}
ID_HEADERS = {
    "X-Correlation-ID": "Becomes the correlation_id of the events this request causes; "
    "echoed in the response (a fresh one is made when absent).",
    "X-Request-ID": "Recorded in the events' metadata as request_id; echoed (made when absent).",
    "X-Fleet-Actor": "Who is acting (a specialist id, a user); recorded as the events' actor.",
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": 'The version the write expects, as the ETag gave it: "3" (or *). A stale '
    "version gets 412; any other form (weak tags, lists) gets 400.",
    "schema": {"type": "string", "pattern": '^("[0-9]{1,19}"|\\*)$', "example": '"1"'},
}
ETAG_HEADER = {
    "ETag": {"description": 'The resource version, strong: "3".', "schema": {"type": "string"}},
}
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes a retry safe: 1-255 printable ASCII characters (else 400). A repeat "
    "with the same key, method, path (without query) and JSON body (and token, with auth) "
    "within FLEET_IDEMPOTENCY_TTL seconds writes nothing and answers the first answer's "
    "status, body, ETag and X-Fleet-Position with Idempotent-Replayed: true; a repeat while "
    "the first runs waits for it. The same key for another request: 422 problem of type "
    "urn:fleet:problem:idempotency-key-reused. A repeat that cannot wait for the first: 409 "
    "problem of type urn:fleet:problem:idempotency-key-in-flight, with Retry-After. Only "
    "writes that succeeded are remembered. See docs/idempotency.md.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
REPLAYED_HEADER = {
    "description": "true when this answer is the remembered answer of an earlier request "
    "with the same Idempotency-Key (nothing was written this time).",
    "schema": {"type": "string", "enum": ["true"]},
}
KEYED_METHODS = frozenset({"post", "patch", "delete"})
WRITE_HEADERS = {
    **ETAG_HEADER,
    "X-Fleet-Position": {
        "description": "Global position of the last event this write appended; pass it as "
        "min_position to read your own write from a list.",
        "schema": {"type": "integer"},
    },
}


class RouteRule(SharedBuilderSeam, Rule):
    """werkzeug's rule, with URL builders compiled once per process (see the seam)."""


class IdConverter(BaseConverter):
    """A path id that is none of the ``reserved`` words: ``<id(register):specialist_id>``.

    ``/specialists/register`` would otherwise match ``/specialists/{specialist_id}`` too,
    and ``OPTIONS`` there would advertise GET and DELETE. With the word excluded only the
    static route matches, so its ``Allow`` header is true and a GET there is a 405.
    """

    def __init__(self, url_map: Map, *reserved: str) -> None:
        super().__init__(url_map)
        self.reserved = reserved
        self.regex = f"(?!(?:{'|'.join(re.escape(word) for word in reserved)})$)[^/]+"

    @staticmethod
    def schema(converter: IdConverter) -> dict[str, Any]:
        """How the OpenAPI document describes such a path parameter."""
        return {"type": "string", "minLength": 1, "not": {"enum": list(converter.reserved)}}


class Converter(OpenAPIConverter):
    """apispec's converter, with two things generated clients need.

    A nullable nested object is ``{"allOf": [{"$ref": ...}], "nullable": true}``: apispec
    writes ``anyOf`` with a plain object first, which clients read as an untyped dict.
    A schema's ``OPENAPI`` mapping (e.g. ``{"minProperties": 1}``) joins its JSON schema.
    """

    NULLABLE_OBJECT: ClassVar = {"type": "object", "nullable": True}

    def field2nullable(self, field: Any, ret: Any) -> dict[str, Any]:
        attributes: dict[str, Any] = super().field2nullable(field, ret)
        alternatives = attributes.get("anyOf", [])
        if self.NULLABLE_OBJECT in alternatives:
            rest = [a for a in alternatives if a != self.NULLABLE_OBJECT]
            attributes = {"allOf": rest, "nullable": True}
        return attributes

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema: dict[str, Any] = super().schema2jsonschema(schema)
        jsonschema.update(getattr(schema, "OPENAPI", {}))
        return jsonschema


class Plugin(MarshmallowPlugin):
    Converter = Converter


# What the OpenAPI document depends on besides the code: these settings, and what
# ``security`` reads (whether a token is set, FLEET_AUTH_READS).
SPEC_SETTINGS = ("API_TITLE", "API_VERSION", "OPENAPI_VERSION", "API_SPEC_OPTIONS", "ETAG_DISABLED")


class BuiltSpec(NamedTuple):
    spec: APISpec
    flask_plugin: Any
    ma_plugin: Any


# Documents already built in this process, by ``spec_key``.
BUILT_SPECS: dict[Hashable, BuiltSpec] = {}


def spec_key(app: Flask, blueprints: Sequence[flask_smorest.Blueprint]) -> Hashable:
    """Everything an app's OpenAPI document is made from, besides the code."""
    documented = {name: app.config.get(name) for name in SPEC_SETTINGS}
    return (
        json.dumps(documented, sort_keys=True, default=repr),
        settings.token(app) is not None,
        settings.flag(app.config["FLEET_AUTH_READS"]),
        tuple(blueprints),
    )


class Api(SharedSpecSeam, flask_smorest.Api):
    """flask-smorest's ``Api`` with Fleet's error handling, registering ``blueprints``.

    The OpenAPI document is a pure function of the code and of ``spec_key``, and building it
    (every schema resolved, every operation documented) is most of the cost of ``create_app``.
    It is built once per process for each key and then shared, read-only, by every app built
    with the same key: a server builds one app per process anyway; the test suite builds
    hundreds. An app that takes a built document registers its routes as usual and only
    skips documenting them again.
    """

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # every status an operation answers is listed

    def __init__(self, app: Flask, blueprints: Sequence[flask_smorest.Blueprint]) -> None:
        key = spec_key(app, blueprints)
        self.shared = BUILT_SPECS.get(key)  # application.seams.SharedSpecSeam reads it
        super().__init__(app, spec_kwargs={"marshmallow_plugin": Plugin()})
        self.register_converter(IdConverter, IdConverter.schema)
        for blueprint in blueprints:
            self.register_blueprint(blueprint)
        if self.shared is None:
            BUILT_SPECS[key] = BuiltSpec(self.spec, self.flask_plugin, self.ma_plugin)

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        """As flask-smorest's (which routes ``HTTPException`` to ``handle_http_exception``),
        plus Fleet's errors and its problem+json response components."""
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.register_error_handler(FleetError, problems.fleet_error)
        for error in STORE_UNAVAILABLE:
            app.register_error_handler(error, problems.store_unavailable)
        if self.shared is None:  # a shared document has them already
            self._register_problem_responses()

    def handle_http_exception(self, error: HTTPException) -> Response:
        return problems.http_exception(error)

    def _register_problem_responses(self) -> None:
        """Error responses are documented as problem+json, which is what they are.

        These replace the components flask-smorest registered in ``init_app`` under the
        same names (JSON, its error schema on 2xx and 3xx too): apispec keeps the last
        lazy registration of a name, and emits only the ones an operation refers to.
        """
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)


def contract_shaped(schema: Any) -> AnswerSchema:
    """The response schema instance of a ``Blueprint.response``: an ``AnswerSchema``, whose
    ``dump`` passes the service's answer through (checked under ``TESTING``)."""
    instance = schema() if isinstance(schema, type) else schema
    if not isinstance(instance, AnswerSchema):
        raise TypeError(f"{type(instance).__name__}: a response schema is an AnswerSchema")
    return instance


def security(app: Flask, method: str) -> list[dict[str, list[str]]]:
    """The operation's ``security``, as this server checks it (``request_cycle.check_token``).

    With ``FLEET_API_TOKEN`` set, writes (and with ``FLEET_AUTH_READS`` reads) need the
    bearer token and the others need nothing. Without one, those operations declare the
    token as optional (``{}`` beside it): a client may send it, this server does not ask.
    """
    needs = method.upper() not in request_cycle.SAFE_METHODS or settings.flag(
        app.config["FLEET_AUTH_READS"]
    )
    if not needs:
        return []
    if settings.token(app) is None:
        return [{"bearerAuth": []}, {}]
    return [{"bearerAuth": []}]


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(request_cycle.guard)
        add_doc_callback(self, self._prepare_common_doc)

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        """As flask-smorest's, with one schema instance per route instead of one per request.

        Given a class, webargs builds a new schema (deep-copying every field) on each
        request: about a third of a millisecond of every call. A schema is stateless
        between ``load`` calls, so one instance serves every request.
        """
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)

    def response(self, status_code: Any, schema: Any = None, **kwargs: Any) -> Callable[[Any], Any]:
        """As flask-smorest's; the schema documents the answer, the services shape it."""
        if schema is not None and not isinstance(schema, (str, dict)):
            schema = contract_shaped(schema)
        return super().response(status_code, schema, **kwargs)

    def route(self, rule: str, **options: Any) -> Callable[[Any], Any]:
        """As flask-smorest's; a route with an ``IdConverter`` id documents its 405: the id
        was a reserved word, which names another route (``GET /specialists/register``)."""
        register = super().route(rule, **options)
        if "<id(" not in rule:
            return register

        def decorator(view: Any) -> Any:
            for method in ("get", "post", "patch", "delete"):
                if hasattr(view, method):
                    setattr(view, method, self.problems(405)(getattr(view, method)))
            return register(view)

        return decorator

    def problems(self, *statuses: int) -> Callable[[Any], Any]:
        """Document the error statuses an operation may answer."""

        def decorator(func: Any) -> Any:
            for status in statuses:
                func = self.alt_response(status, response=http.HTTPStatus(status).name)(func)
            return func

        return decorator

    def links(self, statuses: tuple[int, ...], **operations: str) -> Callable[[Any], Any]:
        """Document where an answer leads: ``next_operation_id="<path parameter>=<pointer>"``.

        ``heartbeat="specialist_id=/specialist/id"`` links to the ``heartbeat`` operation,
        its ``specialist_id`` taken from the answer's body at ``/specialist/id``; generated
        clients and stateful fuzzers follow these from one call to the next.
        """
        links = {}
        for operation_id, binding in operations.items():
            name, _, pointer = binding.partition("=")
            links[operation_id] = {
                "operationId": operation_id,
                "parameters": {name: f"$response.body#{pointer}"},
            }

        def decorator(func: Any) -> Any:
            doc = doc_info(func)
            more = {status: links for status in statuses}
            set_doc_info(func, {**doc, "links": {**doc.get("links", {}), **more}})
            return func

        return decorator

    def conditional(self, func: Any) -> Any:
        """Document ``If-Match`` (a write to an existing resource) and its 412."""
        func = self.problems(412)(func)
        set_doc_info(func, {**doc_info(func), "if_match": True})
        return func

    @staticmethod
    def _prepare_common_doc(doc: dict[str, Any], doc_info: Any, **kwargs: Any) -> dict[str, Any]:
        parameters = doc.setdefault("parameters", [])
        for name, description in ID_HEADERS.items():
            parameters.append(
                {
                    "in": "header",
                    "name": name,
                    "required": False,
                    "description": description,
                    "schema": dict(ID_HEADER_SCHEMA),
                }
            )
        if doc_info.get("if_match"):
            parameters.append(dict(IF_MATCH))
        doc["security"] = security(kwargs["app"], kwargs["method"])
        responses = doc.setdefault("responses", {})
        for status, links in doc_info.get("links", {}).items():
            responses[status]["links"] = links
        if kwargs.get("method") in KEYED_METHODS:
            parameters.append(dict(IDEMPOTENCY_KEY))
            responses.setdefault(409, "CONFLICT")
            responses.setdefault(422, "UNPROCESSABLE_ENTITY")
            for status, response in responses.items():
                if 200 <= int(status) < 300 and isinstance(response, dict):
                    response.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED_HEADER
        responses.setdefault(400, "BAD_REQUEST")
        responses.setdefault(401, "UNAUTHORIZED")
        if "requestBody" in doc:
            responses.setdefault(413, "REQUEST_ENTITY_TOO_LARGE")
        return doc
