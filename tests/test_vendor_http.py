"""The HTTP sending every vendor shares (bot/vendors/common.py): what a transport failure or
an unusable reply becomes, once for all vendors. Each vendor's tests keep one smoke test of
each, plus the statuses and error bodies that only that vendor sends."""

from __future__ import annotations

import httpx
import pytest

from bot.vendors.base import TransientError, build_http_client
from bot.vendors.common import json_object, send, unreadable
from tests.fakes import Reply, ScriptedTransport

URL = "https://vendor.test/v1/jobs/1"


def sent(reply: Reply, *, chain: bool = True) -> httpx.Response:
    with build_http_client(ScriptedTransport(reply)) as http:
        return send(http, "GET", URL, vendor="Acme", chain=chain)


@pytest.mark.parametrize(
    "failure, message",
    [
        (httpx.ReadTimeout("read timed out"), "Acme did not answer in time"),
        (httpx.ConnectTimeout("connect timed out"), "Acme did not answer in time"),
        (httpx.WriteTimeout("write timed out"), "Acme did not answer in time"),
        (httpx.PoolTimeout("no free connection"), "Acme did not answer in time"),
        (httpx.ConnectError("connection refused"), "could not reach Acme (ConnectError)"),
        (httpx.ReadError("connection reset"), "could not reach Acme (ReadError)"),
        (httpx.WriteError("broken pipe"), "could not reach Acme (WriteError)"),
        (
            httpx.RemoteProtocolError("server disconnected"),
            "could not reach Acme (RemoteProtocolError)",
        ),
        (httpx.ProxyError("proxy refused"), "could not reach Acme (ProxyError)"),
        (httpx.UnsupportedProtocol("gopher://"), "could not reach Acme (UnsupportedProtocol)"),
    ],
    ids=[
        "read-timeout",
        "connect-timeout",
        "write-timeout",
        "pool-timeout",
        "connect-error",
        "read-error",
        "write-error",
        "disconnected",
        "proxy",
        "protocol",
    ],
)
def test_a_transport_failure_is_transient_and_names_the_vendor(
    failure: Exception, message: str
) -> None:
    with pytest.raises(TransientError) as err:
        sent(failure)
    assert err.value.message == message
    assert err.value.__cause__ is failure


def test_unchained_failures_carry_no_request_along() -> None:
    """The httpx error holds the request (URL, headers): with chain=False it is dropped."""
    with pytest.raises(TransientError) as err:
        sent(httpx.ConnectError("refused, while sending Authorization: secret"), chain=False)
    assert err.value.message == "could not reach Acme (ConnectError)"
    assert err.value.__cause__ is None and err.value.__context__ is None
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("status", [200, 404, 429, 500, 503])
def test_any_http_answer_is_returned_for_the_vendor_to_judge(status: int) -> None:
    assert sent(httpx.Response(status, text="x")).status_code == status


def test_other_errors_are_not_hidden() -> None:
    with pytest.raises(ValueError):
        sent(ValueError("a bug in our own code"))


@pytest.mark.parametrize(
    "reply, body",
    [
        (httpx.Response(200, json={"status": "ok"}), {"status": "ok"}),
        (httpx.Response(200, json={}), {}),
        (httpx.Response(200, json=["not", "an", "object"]), None),
        (httpx.Response(200, json="text"), None),
        (httpx.Response(200, json=None), None),
        (httpx.Response(200, text='{"status": "compl'), None),
        (httpx.Response(200, text="<html>hi</html>"), None),
        (httpx.Response(200, text=""), None),
        (httpx.Response(200, content=b"\xff\xfe{"), None),
    ],
    ids=["object", "empty-object", "list", "string", "null", "truncated", "html", "empty", "bytes"],
)
def test_json_object_is_the_body_only_when_it_is_a_json_object(
    reply: httpx.Response, body: dict | None
) -> None:
    assert json_object(reply) == body


@pytest.mark.parametrize(
    "reply, message",
    [
        (
            httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"}),
            "Acme sent an unreadable reply (HTTP 200, text/html)",
        ),
        (
            httpx.Response(
                200, text='{"status": "compl', headers={"content-type": "application/json"}
            ),
            "Acme sent an unreadable reply (HTTP 200, application/json)",
        ),
        (
            httpx.Response(
                502, text="<html>", headers={"content-type": "text/html; charset=utf-8"}
            ),
            "Acme sent an unreadable reply (HTTP 502, text/html)",
        ),
        (httpx.Response(200, text=""), "Acme sent an unreadable reply (HTTP 200, empty body)"),
        (httpx.Response(200, content=b"x"), "Acme sent an unreadable reply (HTTP 200, no type)"),
        (
            httpx.Response(200, text="x", headers={"content-type": "application/" + "x" * 80}),
            "Acme sent an unreadable reply (HTTP 200, application/" + "x" * 28 + ")",
        ),
    ],
    ids=["html", "truncated-json", "charset-dropped", "empty", "no-type", "long-type-cut"],
)
def test_an_unreadable_reply_is_transient_and_says_what_came(
    reply: httpx.Response, message: str
) -> None:
    err = unreadable(reply, "Acme")
    assert isinstance(err, TransientError)
    assert err.message == message
