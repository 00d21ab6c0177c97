"""/openapi.json documents every operation, and the errors it declares are the ones answered."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service import schemas
from service.config import Settings
from service.deps import require_api_key
from service.embedded import EmbeddedRedis
from service.main import create_app
from tests.service.conftest import Running
from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio

KEY = "s3cret"
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
async def spec(svc: Running) -> dict[str, Any]:
    response = await svc.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(spec: dict[str, Any]) -> list[Operation]:
    found = [(path, m, op) for path, ops in spec["paths"].items() for m, op in ops.items()]
    assert len(found) >= 15  # every route below is checked, not a lucky few
    return found


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return resolved


def _examples(spec: dict[str, Any], holder: dict[str, Any]) -> list[Any]:
    """Return the examples of a media type or parameter: its own or its schema's."""
    if "example" in holder:
        return [holder["example"]]
    if holder.get("examples"):
        found = holder["examples"]
        return [e["value"] for e in found.values()] if isinstance(found, dict) else list(found)
    return list(_resolve(spec, holder.get("schema", {})).get("examples", []))


def _errors(op: dict[str, Any]) -> set[int]:
    return {int(status) for status in op["responses"] if int(status) >= 400}


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            found.append(route)
        # Recent FastAPI keeps an included router whole instead of copying its routes.
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found += _api_routes(inner.routes)
    return found


def _routes(app: Any) -> dict[tuple[str, str], APIRoute]:
    routes = {
        (route.path, method.lower()): route
        for route in _api_routes(app.routes)
        for method in route.methods
    }
    assert len(routes) >= 15
    return routes


def _needs_key(route: APIRoute) -> bool:
    pending, calls = [route.dependant], []
    while pending:
        dependant = pending.pop()
        calls.append(dependant.call)
        pending.extend(dependant.dependencies)
    return require_api_key in calls


async def test_the_api_has_an_overview_and_a_key_scheme(spec):
    assert "rec_id" in spec["info"]["description"]
    assert "X-API-Key" in spec["info"]["description"]
    scheme = spec["components"]["securitySchemes"]["ApiKey"]
    assert scheme == scheme | {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert {tag["name"] for tag in spec["tags"]} >= {
        tag for _, _, op in _operations(spec) for tag in op["tags"]
    }


async def test_every_operation_has_a_summary_a_description_and_examples(svc, spec):
    routes = _routes(svc.app)
    for path, method, op in _operations(spec):
        where = f"{method.upper()} {path}"
        # Set by hand: FastAPI's generated summary is the function name ("Put Items").
        assert routes[path, method].summary and op["summary"], where
        assert len(op["description"]) > len(op["summary"]), where
        for parameter in op.get("parameters", []):
            assert _examples(spec, parameter), f"{where}: parameter {parameter['name']}"
        if "requestBody" in op:
            for media_type, media in op["requestBody"]["content"].items():
                assert _examples(spec, media), f"{where}: request {media_type}"
        for status, response in op["responses"].items():
            assert response["description"], f"{where} {status}"
            for media_type, media in response.get("content", {}).items():
                assert _examples(spec, media), f"{where} {status}: {media_type}"
                if int(status) >= 400:
                    for example in _examples(spec, media):
                        schemas.ErrorResponse.model_validate(example)


async def test_the_key_scheme_is_on_exactly_the_routes_that_check_it(svc, spec):
    routes = _routes(svc.app)
    protected = 0
    for path, method, op in _operations(spec):
        needs_key = _needs_key(routes[path, method])
        protected += needs_key
        assert (op.get("security") == [{"ApiKey": []}]) is needs_key, (method, path)
        assert (401 in _errors(op)) is needs_key, (method, path)
    assert protected >= 7


async def test_error_codes_follow_from_what_the_operation_takes(spec):
    for path, method, op in _operations(spec):
        errors, where = _errors(op), (method, path)
        has_body = "requestBody" in op
        # Only a body can be undecodable or too large.
        assert (400 in errors) is has_body and (413 in errors) is has_body, where
        assert (422 in errors) is (has_body or bool(op.get("parameters"))), where
        assert errors <= {400, 401, 404, 413, 422, 503}, where
    assert _errors(spec["paths"]["/healthz"]["get"]) == set()


async def test_schema_examples_are_valid_instances_of_their_models(spec):
    checked = 0
    for name, schema in spec["components"]["schemas"].items():
        model = getattr(schemas, name, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for example in schema.get("examples", []):
            model.model_validate(example)
            checked += 1
    assert checked >= 15


def _path(path: str, op: dict[str, Any], value: str | None, spec: dict[str, Any]) -> str:
    for parameter in op.get("parameters", []):
        if parameter["in"] == "path":
            fill = value if value is not None else str(_examples(spec, parameter)[0])
            path = path.replace("{" + parameter["name"] + "}", fill)
    return path


def _body(spec: dict[str, Any], op: dict[str, Any]) -> bytes | None:
    if "requestBody" not in op:
        return None
    example = _examples(spec, op["requestBody"]["content"]["application/json"])[0]
    return httpx.Request("POST", "/", json=example).content


async def _probe(
    client: httpx.AsyncClient, spec: dict[str, Any], path: str, method: str, op: dict[str, Any]
) -> set[int]:
    """Return the statuses of requests built to trigger each error an operation may answer."""
    key = {"X-API-Key": KEY}
    as_json = key | {"content-type": "application/json"}
    body = _body(spec, op)
    requests: list[dict[str, Any]] = [
        # As documented: the examples of the parameters and the body.
        {"url": _path(path, op, None, spec), "content": body, "headers": as_json},
        {"url": _path(path, op, None, spec), "content": body, "headers": {}},
        # An id nothing was stored under (a PUT probe stores its own, so one per operation).
        {
            "url": _path(path, op, f"never-{method}-{len(path)}", spec),
            "content": body,
            "headers": as_json,
        },
    ]
    if body is not None:
        requests += [
            {"url": _path(path, op, None, spec), "content": b"\xff", "headers": as_json},
            {"url": _path(path, op, None, spec), "content": b"{not json", "headers": as_json},
            {"url": _path(path, op, None, spec), "content": b" " * 2048, "headers": as_json},
        ]
    for parameter in op.get("parameters", []):
        bad = {"url": _path(path, op, "a{b}", spec), "headers": key}
        if parameter["in"] == "query":
            bad = {"url": _path(path, op, None, spec), "headers": key}
            bad["params"] = {parameter["name"]: "x"}
        requests.append(bad | {"content": body})
    statuses = set()
    for request in requests:
        response = await client.request(method.upper(), **request)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"] and error["message"], (method, path, response.text)
        statuses.add(response.status_code)
    return statuses


async def test_declared_error_codes_are_the_ones_answered(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec").start()
    settings = Settings(
        redis_url=server.url, snapshot_ms=50, redis_timeout_s=0.5, api_key=KEY, max_body_bytes=1024
    )
    app = create_app(settings, seed=1)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            spec = (await http.get("/openapi.json")).json()
            operations = _operations(spec)
            answered = {(p, m): await _probe(http, spec, p, m, op) for p, m, op in operations}
            server.stop()
            for path, method, op in operations:
                request = {"content": _body(spec, op), "headers": {"X-API-Key": KEY}}
                if request["content"] is not None:
                    request["headers"]["content-type"] = "application/json"
                url = _path(path, op, None, spec)
                outage = await http.request(method.upper(), url, **request)
                answered[path, method].add(outage.status_code)
    finally:
        server.stop()
    for path, method, op in operations:
        errors = {s for s in answered[path, method] if s >= 400}
        assert errors == _errors(op), f"{method.upper()} {path} answered {sorted(errors)}"


async def test_405_allows_every_method_of_the_path(svc, spec):
    response = await svc.client.post("/v1/stats")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert response.json()["error"]["code"] == "method_not_allowed"
    # A mounted app's own refusal keeps its own Allow.
    static = await svc.client.post("/docs-assets/swagger-ui.css")
    assert (static.status_code, static.headers["allow"]) == (405, "GET, HEAD")
    templates = {
        re.compile(re.sub(r"\{\w+\}", "[^/]+", path) + "$"): ops
        for path, ops in spec["paths"].items()
    }
    for path in spec["paths"]:
        url = path.replace("{item_id}", "i1").replace("{user_id}", "u1")
        response = await svc.client.patch(url)
        assert response.status_code == 405, path
        # Every route the URL matches counts: GET /v1/items/bulk reads the item 'bulk'.
        served = {m.upper() for t, ops in templates.items() if t.match(url) for m in ops}
        assert set(response.headers["allow"].split(", ")) == served, path


async def test_undecodable_and_malformed_bodies_name_the_body(svc):
    as_json = {"content-type": "application/json"}
    response = await svc.client.post("/v1/feedback", content=b"\xff", headers=as_json)
    assert response.status_code == 400
    assert response.json()["error"] | {"message": ""} == {
        "code": "bad_request",
        "message": "",
        "field": "body",
    }
    response = await svc.client.post("/v1/feedback", content=b'{"events": [', headers=as_json)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "body" and "invalid JSON" in error["message"], error


async def test_the_export_is_documented_as_the_engine_writes_it(svc, spec):
    await add_items(svc.client, ["a", "b", "c"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 2})).json()
    shown = rec["items"][0]["item_id"]
    await send(svc.client, [event("impression", "u", shown, rec["rec_id"])])
    export = await svc.client.get("/v1/admin/logs/export")
    line = json.loads(export.text.splitlines()[0])
    op = spec["paths"]["/v1/admin/logs/export"]["get"]
    example = json.loads(op["responses"]["200"]["content"]["application/x-ndjson"]["example"])
    assert list(example) == list(line)
    assert list(example["items"][0]) == list(line["items"][0])
    listed = re.search(r"`\{(.*?)\}`", op["description"], re.DOTALL)
    assert listed is not None, op["description"]
    assert re.findall(r"\w+", listed.group(1)) == [*line, *line["items"][0]]
