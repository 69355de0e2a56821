"""The watch API over HTTP, against the real bot: tokens made in Slack, every answer a
script can get, and what the channel shows for a watch a token started."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from bot.simulators.zoho import steps_success
from tests.conftest import bot_env

WS, JOB = "2480011000000498001", "2480011000000512007"
REF = f"{WS}/{JOB}"


def make_token(
    slack, fake_slack, name: str = "nightly-etl", *extra: str, user: str = "U1", channel: str = "C1"
) -> str:
    """`/syncwatch token create`, as an admin: the token from the private answer."""
    text = slack.ask(" ".join(["token create", name, *extra]), user=user, channel=channel)
    assert "`swt_" in text, text
    return text.split("`swt_", 1)[1].split("`", 1)[0].join(["swt_", ""])


@pytest.fixture
def api(start_bot, fake_slack, zoho_sim, tmp_path):
    fake_slack.set_channel("C1", creator="U1")
    fake_slack.set_channel("C0TWO", creator="U1")
    zoho_sim.add_import_job(WS, JOB, steps_success()[1:2])  # runs until a test says
    bot, slack = start_bot(bot_env(tmp_path, fake_slack, zoho_sim))
    token = make_token(slack, fake_slack)
    return bot, slack, token


def call(slack, method: str, path: str, token: str | None = None, **kw) -> httpx.Response:
    headers = kw.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{slack.base_url}{path}", headers=headers, timeout=10, **kw)


def test_a_script_starts_a_watch_and_the_channel_names_its_token(api, fake_slack, zoho_sim):
    bot, slack, token = api
    zoho_sim.add_import_job(WS, JOB, steps_success())
    created = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert created.status_code == 201, created.text
    watch = created.json()
    assert set(watch) == {
        "id",
        "vendor",
        "ref",
        "channel",
        "status",
        "state",
        "vendor_status",
        "progress",
        "started_at",
        "finished_at",
        "files",
        "permalink",
    }
    assert (watch["vendor"], watch["ref"], watch["channel"]) == ("zoho-analytics", REF, "C1")
    parent = fake_slack.wait_for("chat.postMessage")[0]
    assert "Started by *nightly-etl*" in json.dumps(parent.params.get("blocks"))
    # The job ends: the terminal reply mentions nobody (a token is not a person) ...
    done = fake_slack.wait_for(
        "chat.postMessage", where=lambda c: "succeeded" in str(c.params.get("text")), timeout=10
    )[0]
    assert "<@" not in done.params["text"]
    # ... and a script waiting on the bot sees what the channel sees.
    seen = call(slack, "GET", f"/api/v1/watches/{watch['id']}", token).json()
    assert seen["status"] == "done" and seen["state"] == "succeeded"
    assert seen["finished_at"] and seen["permalink"].startswith("https://slack.com/archives/C1/p")
    assert seen["files"] == [f"import-summary-{JOB}.csv"]


def test_the_same_job_again_answers_the_running_watch(api, fake_slack):
    _, slack, token = api
    first = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    again = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_twenty_identical_posts_at_once_make_one_watch(api, fake_slack):
    bot, slack, token = api
    answers: list[httpx.Response] = []
    start = threading.Barrier(20)

    def post() -> None:
        start.wait()
        answers.append(
            call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
        )

    threads = [threading.Thread(target=post) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 19 + [201], statuses
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(bot.store.list_watches(statuses=None)) == 1


def test_an_idempotency_key_answers_the_first_request_again(api):
    _, slack, token = api
    headers = {"Idempotency-Key": "run-2026-01-01"}
    body = {"vendor": "za", "ref": REF}
    first = call(slack, "POST", "/api/v1/watches", token, json=body, headers=dict(headers))
    again = call(slack, "POST", "/api/v1/watches", token, json=body, headers=dict(headers))
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    other = call(
        slack,
        "POST",
        "/api/v1/watches",
        token,
        json={"vendor": "za", "ref": f"{WS}/1"},
        headers=dict(headers),
    )
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_delete_stops_the_watch_and_the_thread_names_the_token(api, fake_slack):
    bot, slack, token = api
    watch = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF}).json()
    stopped = call(slack, "DELETE", f"/api/v1/watches/{watch['id']}", token)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    reply = fake_slack.wait_for(
        "chat.postMessage", where=lambda c: "Stopped watching" in str(c.params.get("text"))
    )[0]
    assert "at *nightly-etl*'s request" in json.dumps(reply.params["blocks"])


ERRORS = [
    # (body or raw bytes, headers, status, code)
    (b"{not json", {}, 400, "invalid_json"),
    (b"\xff\xfe", {}, 400, "invalid_json"),
    (b'{"vendor": "za", "ref": "\\ud800"}', {}, 400, "invalid_json"),
    ([1, 2], {}, 400, "invalid_body"),
    ({"vendor": "nope", "ref": "1"}, {}, 400, "unknown_vendor"),
    ({"vendor": "za", "ref": "12/abc"}, {}, 400, "malformed_ref"),
    ({"vendor": "za"}, {}, 400, "missing_field"),
    ({"vendor": "za", "ref": REF, "colour": "red"}, {}, 400, "unknown_field"),
    ({"vendor": "za", "ref": REF, "every": "soon"}, {}, 400, "invalid_field"),
    ({"vendor": "za", "ref": REF, "connection": "eu"}, {}, 400, "unknown_connection"),
    (
        {"vendor": "zuora", "ref": "2c92c0f86f3a5b0e016f3f0e8a3b1234"},
        {},
        400,
        "vendor_not_configured",
    ),
    ({"vendor": "za", "ref": REF, "channel": "C0OTHER"}, {}, 403, "channel_not_allowed"),
    ({"vendor": "za", "ref": REF}, {"Idempotency-Key": "a b"}, 400, "invalid_idempotency_key"),
]


@pytest.mark.parametrize("body, headers, status, code", ERRORS)
def test_every_refusal_is_json_with_a_stable_code(api, fake_slack, body, headers, status, code):
    bot, slack, token = api
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = call(slack, "POST", "/api/v1/watches", token, headers=dict(headers), **kw)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert answer.json()["error"]["message"]
    assert bot.store.list_watches(statuses=None) == []
    assert fake_slack.calls_for("chat.postMessage") == []


@pytest.mark.parametrize("authorization", [None, "Bearer swt_" + "x" * 43, "Basic abc", "Bearer"])
def test_a_missing_or_wrong_token_is_401_and_never_says_which(api, authorization):
    _, slack, _ = api
    headers = {"Authorization": authorization} if authorization else {}
    answer = call(slack, "POST", "/api/v1/watches", headers=headers, json={"vendor": "za"})
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {"code": "unauthorized", "message": answer.json()["error"]["message"]}
    }
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    same = call(slack, "GET", "/api/v1/watches/w234", headers=headers)
    assert (same.status_code, same.json()) == (401, answer.json())


def test_a_body_over_64_kb_is_413(api):
    _, slack, token = api
    big = json.dumps({"vendor": "za", "ref": REF, "requested_by": "x" * 70_000})
    answer = call(slack, "POST", "/api/v1/watches", token, content=big)
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "body_too_large")


def test_a_channel_the_bot_is_not_in_is_409(api, fake_slack):
    bot, slack, _ = api
    fake_slack.set_channel("C0OPS", is_member=False, creator="U1")
    # The bot is not in C3 yet, so its creator can't make a token for it either ...
    text = slack.ask("token create c3-script <#C0OPS|ops>", user="U1", channel="C0OPS")
    assert "Invite me there" in text and "swt_" not in text
    # ... and a token for a channel the bot has left answers 409 instead of posting.
    fake_slack.set_channel("C0OPS", creator="U1")
    token = make_token(slack, fake_slack, "c3-script", "<#C0OPS|ops>", channel="C0OPS")
    fake_slack.set_channel("C0OPS", is_member=False, creator="U1")
    answer = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "not_in_channel")
    assert bot.store.list_watches(statuses=None) == []


def test_unknown_watch_or_other_channels_watch_is_404(api, fake_slack):
    bot, slack, token = api
    other = make_token(slack, fake_slack, "other", "<#C0TWO|two>")
    watch = call(slack, "POST", "/api/v1/watches", other, json={"vendor": "za", "ref": REF}).json()
    assert watch["channel"] == "C0TWO"
    for path in (f"/api/v1/watches/{watch['id']}", "/api/v1/watches/wzzzz", "/api/v1/watches/x"):
        for method in ("GET", "DELETE"):
            answer = call(slack, method, path, token)
            assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found")
    assert bot.store.get_watch(watch["id"]).status == "active"
