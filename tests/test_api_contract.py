"""The OpenAPI document is the contract: requests drawn from it (and around it) against the
live server get no 5xx, only statuses the document lists, and bodies that match its
schemas. Property-based (hypothesis), a few hundred requests, a few seconds."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.api import credentials
from bot.api.openapi import document
from tests.conftest import bot_env
from tests.test_api import REF, make_token

DOC = document()
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,  # no example database in the work tree
    # The same examples every run: CI is not where a new random example should first fail.
    derandomize=True,
)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One bot for the whole module (hypothesis calls each test many times)."""
    import pytest as _pytest

    from bot import poller
    from bot.simulators.slack import FakeSlackAPI
    from bot.simulators.zoho import ZohoSimulator
    from tests.conftest import BotStarter

    tmp = tmp_path_factory.mktemp("contract")
    with FakeSlackAPI() as fake, ZohoSimulator() as zoho:
        fake.set_channel("C1", creator="U1")
        patch = _pytest.MonkeyPatch()
        patch.setattr(poller, "TICK_SECONDS", 0.05)
        env = bot_env(tmp, fake, zoho) | {"SYNCWATCH_API_RATE_PER_MINUTE": "1000000"}
        starter = BotStarter(lambda: env, fake)
        try:
            bot, slack = starter()
            token = make_token(slack, fake)
            with httpx.Client(base_url=slack.base_url, timeout=10) as client:
                yield client, token
        finally:
            starter.stop_all()
            patch.undo()


def check(response: httpx.Response, path: str, method: str) -> None:
    """No 5xx; a status the document lists for the operation; a body that matches it."""
    assert response.status_code < 500, (method, path, response.status_code, response.text)
    operation = DOC["paths"][path][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, (method, path, response.status_code, response.text)
    media = response.headers.get("content-type", "").split(";")[0]
    assert media in documented["content"], (media, response.status_code)
    schema = documented["content"][media]["schema"]
    if media == "application/json":
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": DOC["components"]},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        validator.validate(response.json())
    for name in documented.get("headers", {}):
        assert name in response.headers, (name, response.status_code)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
vendors = st.sampled_from(["za", "zoho-analytics", "zuora", "crm", "micro", "za-sync", "nope", ""])
refs = st.sampled_from([REF, "12/abc", "", "2c92c0f86f3a5b0e016f3f0e8a3b1234", "1" * 30]) | st.text(
    max_size=40
)
new_watch = st.fixed_dictionaries(
    {"vendor": vendors | st.integers(), "ref": refs},
    optional={
        "channel": st.sampled_from(["C1", "C0ELSE", "nope"]) | st.integers(),
        "connection": st.sampled_from(["default", "eu", ""]) | st.none(),
        "every": st.sampled_from(["30s", "2m", "0s", "soon", 5, 0, 1e9, True]),
        "requested_by": st.sampled_from(["U0ALICE", "airflow", "", "x" * 100, "\n"]),
        "colour": json_values,
    },
)
bodies = (
    new_watch.map(lambda b: json.dumps(b).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=60)
)


def auth_header(choice: str, token: str) -> dict[str, str]:
    return {
        "valid": {"Authorization": f"Bearer {token}"},
        "none": {},
        "wrong": {"Authorization": "Bearer swt_" + "A" * 43},
        "scheme": {"Authorization": f"Basic {token}"},
    }[choice]


auths = st.sampled_from(["valid", "valid", "valid", "none", "wrong", "scheme"])


@SETTINGS
@given(body=bodies, auth=auths, key=st.none() | st.text(max_size=12))
def test_post_watches_keeps_to_the_contract(live, body, auth, key):
    client, token = live
    headers = auth_header(auth, token) | {"Content-Type": "application/json"}
    if key is not None and key.isascii() and key.isprintable():
        headers["Idempotency-Key"] = key
    response = client.post("/api/v1/watches", content=body, headers=headers)
    check(response, "/api/v1/watches", "POST")


@SETTINGS
@given(
    watch_id=st.sampled_from(["w234", "wzzzz"]) | st.text(min_size=1, max_size=20),
    method=st.sampled_from(["GET", "DELETE"]),
    auth=auths,
)
def test_one_watch_keeps_to_the_contract(live, watch_id, method, auth):
    client, token = live
    path = "/api/v1/watches/" + quote(watch_id, safe="")
    response = client.request(method, path, headers=auth_header(auth, token))
    if response.status_code == 404 and response.headers["content-type"] == "text/plain":
        return  # a quoted `/` made it another path: not this operation
    check(response, "/api/v1/watches/{id}", method)


@SETTINGS
@given(
    vendor=st.sampled_from(["zuora", "za", "crm", "zoho-analytics", "nope"]),
    good_key=st.booleans(),
    query=st.dictionaries(
        st.sampled_from(["job", "jobId", "id", "workspace", "status", "x"]),
        st.sampled_from([REF, "2480011000000512007", "2c92c0f86f3a5b0e016f3f0e8a3b1234", ""])
        | st.text(max_size=20),
        max_size=3,
    ),
    body=st.none() | bodies,
)
def test_callbacks_keep_to_the_contract(live, vendor, good_key, query, body):
    client, token = live
    key = credentials.hook_key(credentials.digest(token)) if good_key else "swh_" + "a" * 32
    path = f"/hooks/{vendor}/{key}"
    if body is None:
        response = client.get(path, params=query)
        method = "GET"
    else:
        response = client.post(path, params=query, content=body)
        method = "POST"
    check(response, "/hooks/{vendor}/{key}", method)
    if not good_key or vendor == "nope":
        assert (response.status_code, response.text) == (404, "not found\n")


def test_the_document_is_served_and_is_openapi_3_1(live):
    client, _ = live
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    assert served["openapi"] == "3.1.0" and served == json.loads(json.dumps(DOC))
    jsonschema.Draft202012Validator.check_schema(DOC["components"]["schemas"]["Watch"])
