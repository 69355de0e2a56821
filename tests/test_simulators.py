"""The fake Slack Web API and the Zoho simulator behave as the tests and the demo expect."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.simulators.slack import FakeSlackAPI, Message
from bot.simulators.zoho import ZohoSimulator, steps_failure, steps_partial, steps_success

# ----- fake Slack -----


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlackAPI) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url, timeout=5)


def test_auth_test_identifies_the_bot(fake: FakeSlackAPI, client: WebClient) -> None:
    r = client.auth_test()
    assert (r["user_id"], r["bot_id"], r["team_id"], r["user"]) == (
        "UBOT",
        "BBOT",
        "T1",
        "syncwatch",
    )
    [call] = fake.calls
    assert call.method == "auth.test"
    assert call.headers["authorization"] == "Bearer xoxb-test"


def test_post_message_answers_increasing_ts_and_is_modelled(
    fake: FakeSlackAPI, client: WebClient
) -> None:
    first = client.chat_postMessage(channel="C1", text="one", blocks=[{"type": "divider"}])
    second = client.chat_postMessage(channel="C1", text="two")
    reply = client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])
    assert first["ts"] == "1700000000.000001"
    assert float(first["ts"]) < float(second["ts"]) < float(reply["ts"])
    assert first["channel"] == "C1" and first["message"]["text"] == "one"
    assert [m.text for m in fake.messages("C1")] == ["one", "two"]
    assert fake.messages("C1")[0].blocks == [{"type": "divider"}]
    assert [(m.text, m.thread_ts) for m in fake.thread("C1", first["ts"])] == [
        ("in thread", first["ts"])
    ]
    assert fake.calls_for("chat.postMessage")[0].params["channel"] == "C1"


def test_update_replaces_text_and_keeps_omitted_blocks(
    fake: FakeSlackAPI, client: WebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*running*"}}]
    ts = client.chat_postMessage(channel="C1", text="running", blocks=blocks)["ts"]
    r = client.chat_update(channel="C1", ts=ts, text="done")
    assert (r["channel"], r["ts"], r["text"]) == ("C1", ts, "done")
    [parent] = fake.messages("C1")
    assert (parent.text, parent.blocks, parent.edits) == ("done", blocks, 1)
    client.chat_update(channel="C1", ts=ts, text="done", blocks=[])
    assert fake.messages("C1")[0].blocks == []
    assert fake.messages("C1")[0].edits == 2


def test_conversations_info_follows_set_channel(fake: FakeSlackAPI, client: WebClient) -> None:
    assert client.conversations_info(channel="C1")["channel"] == {
        "id": "C1",
        "is_member": True,
        "is_archived": False,
        "is_private": False,
        "creator": "",
    }
    fake.set_channel("C5", creator="U0MAKER")  # who made it: the admin rule for tokens
    assert client.conversations_info(channel="C5")["channel"]["creator"] == "U0MAKER"
    fake.set_channel("C2", is_member=False)
    assert client.conversations_info(channel="C2")["channel"]["is_member"] is False
    with pytest.raises(SlackApiError) as posted:
        client.chat_postMessage(channel="C2", text="hi")
    assert posted.value.response["error"] == "not_in_channel"
    fake.set_channel("C3", is_archived=True)
    assert client.conversations_info(channel="C3")["channel"]["is_archived"] is True
    fake.set_channel("C4", exists=False)
    with pytest.raises(SlackApiError) as missing:
        client.conversations_info(channel="C4")
    assert missing.value.response["error"] == "channel_not_found"


def test_files_upload_v2_lands_in_the_thread(fake: FakeSlackAPI, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    r = client.files_upload_v2(
        channel="C1",
        thread_ts=parent,
        content=b"a,b\n1,2\n",
        filename="rows.csv",
        title="Rejected rows",
        initial_comment="13 rows rejected",
    )
    assert r["file"]["id"] == "F1"
    assert fake.uploads == {"F1": b"a,b\n1,2\n"}
    assert json.loads(fake.calls_for("files.completeUploadExternal")[0].params["files"])[0] == {
        "id": "F1",
        "title": "Rejected rows",
    }
    [reply] = fake.thread("C1", parent)
    assert (reply.text, reply.files) == ("13 rows rejected", [("F1", "Rejected rows", "rows.csv")])
    assert [m.text for m in fake.messages("C1")] == ["parent"]


def test_history_and_replies_return_metadata_only_when_asked(
    fake: FakeSlackAPI, client: WebClient
) -> None:
    meta = {"event_type": "syncwatch_outbox", "event_payload": {"outbox_id": 7}}
    parent = client.chat_postMessage(channel="C1", text="parent", metadata=meta)["ts"]
    client.chat_postMessage(channel="C1", text="later")
    client.chat_postMessage(channel="C1", text="reply", thread_ts=parent, metadata=meta)
    history = client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["later", "parent"]
    assert history["messages"][1]["metadata"] == meta
    assert history["messages"][1]["thread_ts"] == parent
    assert "metadata" not in client.conversations_history(channel="C1")["messages"][1]
    replies = client.conversations_replies(channel="C1", ts=parent, include_all_metadata=True)
    assert [(m["text"], m["thread_ts"]) for m in replies["messages"]] == [
        ("parent", parent),
        ("reply", parent),
    ]
    assert replies["messages"][1]["metadata"] == meta


def test_fail_next_429_raises_with_status_then_recovers(
    fake: FakeSlackAPI, client: WebClient
) -> None:
    fake.fail_next("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "0"})
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C1", text="hi")
    assert failed.value.response.status_code == 429
    assert failed.value.response["error"] == "ratelimited"
    assert failed.value.response.headers["Retry-After"] == "0"
    assert fake.messages("C1") == []
    assert client.chat_postMessage(channel="C1", text="hi")["ok"] is True


def test_fail_next_500s_are_used_in_order(fake: FakeSlackAPI, client: WebClient) -> None:
    fake.fail_next("chat.update", "internal_error", status=500)
    fake.fail_next("chat.update", "message_not_found")
    for status, error in ((500, "internal_error"), (200, "message_not_found")):
        with pytest.raises(SlackApiError) as failed:
            client.chat_update(channel="C1", ts="1.0", text="x")
        assert (failed.value.response.status_code, failed.value.response["error"]) == (
            status,
            error,
        )
    assert client.chat_update(channel="C1", ts="1.0", text="x")["ok"] is True
    assert len(fake.calls_for("chat.update")) == 3


def test_wait_for_returns_once_the_call_arrives(fake: FakeSlackAPI, client: WebClient) -> None:
    poster = threading.Thread(target=client.chat_postMessage, kwargs={"channel": "C9", "text": "x"})
    poster.start()
    [call] = fake.wait_for("chat.postMessage", where=lambda c: c.params["channel"] == "C9")
    poster.join()
    assert call.params["text"] == "x"


def test_wait_for_times_out_listing_what_it_saw(fake: FakeSlackAPI, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"chat\.update.*got 0.*auth\.test x1"):
        fake.wait_for("chat.update", timeout=0.1)


def test_response_url_posts_are_recorded(fake: FakeSlackAPI) -> None:
    r = WebhookClient(fake.response_url("cmd")).send(text="Watching", response_type="ephemeral")
    assert (r.status_code, r.body) == (200, "ok")
    [call] = fake.wait_for("respond/cmd")
    assert call.params == {"text": "Watching", "response_type": "ephemeral"}


def test_on_change_sees_posts_updates_and_survives_a_failing_callback(
    fake: FakeSlackAPI, client: WebClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str]] = []

    def broken(kind: str, message: Message) -> None:
        raise RuntimeError("demo printer bug")

    fake.on_change(broken)
    fake.on_change(lambda kind, message: seen.append((kind, message.text)))
    ts = client.chat_postMessage(channel="C1", text="a")["ts"]
    client.chat_update(channel="C1", ts=ts, text="b")
    assert seen == [("post", "a"), ("update", "b")]
    assert "on_change callback failed" in caplog.text


# ----- Zoho -----


@pytest.fixture
def zoho() -> Iterator[ZohoSimulator]:
    with ZohoSimulator() as server:
        yield server


@pytest.fixture
def http(zoho: ZohoSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=zoho.url, timeout=5) as c:
        yield c


TOKEN_FORM = {
    "grant_type": "refresh_token",
    "client_id": "sim-client",
    "client_secret": "sim-secret",
    "refresh_token": "sim-refresh",
}
JOB = "/restapi/v2/bulk/workspaces/1001/importjobs/2002"


def mint(http: httpx.Client) -> str:
    return http.post("/oauth/v2/token", data=TOKEN_FORM).json()["access_token"]


def poll(
    http: httpx.Client, token: str, path: str = JOB, org: str | None = "55522777"
) -> httpx.Response:
    headers = {"Authorization": f"Zoho-oauthtoken {token}"}
    if org is not None:
        headers["ZANALYTICS-ORGID"] = org
    return http.get(path, headers=headers)


def test_token_is_minted_from_form_body_or_query(zoho: ZohoSimulator, http: httpx.Client) -> None:
    r = http.post("/oauth/v2/token", data=TOKEN_FORM)
    assert r.json() == {
        "access_token": "sim-access-1",
        "expires_in": 3600,
        "api_domain": zoho.url,
        "token_type": "Bearer",
    }
    assert http.post("/oauth/v2/token", params=TOKEN_FORM).json()["access_token"] == "sim-access-2"
    assert zoho.token_requests == 2
    method, path, headers = zoho.requests[0]
    assert (method, path) == ("POST", "/oauth/v2/token")
    assert headers["content-type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("field", "error"), [("client_secret", "invalid_client"), ("refresh_token", "invalid_code")]
)
def test_token_refusals_are_200_with_error(
    zoho: ZohoSimulator, http: httpx.Client, field: str, error: str
) -> None:
    r = http.post("/oauth/v2/token", data={**TOKEN_FORM, field: "wrong"})
    assert (r.status_code, r.json()) == (200, {"error": error})
    assert zoho.token_requests == 0


def test_poll_without_valid_token_is_8535(zoho: ZohoSimulator, http: httpx.Client) -> None:
    zoho.add_import_job("1001", "2002", steps_success())
    for headers in ({}, {"Authorization": f"Bearer {mint(http)}"}):
        r = http.get(JOB, headers={**headers, "ZANALYTICS-ORGID": "55522777"})
        assert r.status_code == 401
        assert r.json()["data"] == {"errorCode": 8535, "errorMessage": "Invalid Oauthtoken"}
    assert zoho.polls("1001", "2002") == 0


def test_poll_checks_the_org_header(http: httpx.Client) -> None:
    token = mint(http)
    missing, wrong = poll(http, token, org=None), poll(http, token, org="999")
    assert (missing.status_code, missing.json()["data"]["errorCode"]) == (400, 8083)
    assert (wrong.status_code, wrong.json()["data"]["errorCode"]) == (400, 7387)
    assert missing.json()["status"] == "failure"


def test_script_advances_per_poll_and_repeats_the_last_step(
    zoho: ZohoSimulator, http: httpx.Client
) -> None:
    zoho.add_import_job("1001", "2002", steps_success(total_rows=10, polls_running=1))
    token = mint(http)
    bodies = [poll(http, token).json() for _ in range(4)]
    assert [b["data"]["jobCode"] for b in bodies] == ["1001", "1002", "1004", "1004"]
    assert {b["status"] for b in bodies} == {"success"}
    assert bodies[0]["summary"] == "Fetch import job info"
    assert bodies[0]["data"]["jobId"] == "2002"
    summary = bodies[3]["data"]["jobInfo"]["importSummary"]
    assert (summary["totalRowCount"], summary["successRowCount"]) == (10, 10)
    assert bodies[3]["data"]["jobInfo"]["importErrors"] == ""
    assert zoho.polls("1001", "2002") == 4


def test_partial_and_failure_scripts_end_as_documented() -> None:
    partial = steps_partial(total_rows=100, rejected=3, error_text="bad rows")[-1]
    assert partial["jobInfo"]["importSummary"]["successRowCount"] == 97
    assert partial["jobInfo"]["importErrors"] == "bad rows"
    failure = steps_failure(polls_running=1)
    assert [s["jobCode"] for s in failure] == ["1002", "1003"]
    assert failure[-1]["jobStatus"] == "ERROR OCCURRED"
    assert "twelve" in failure[-1]["jobInfo"]["importErrors"]


def test_unknown_job_is_1005_on_a_success_envelope(http: httpx.Client) -> None:
    r = poll(http, mint(http))
    assert r.status_code == 200
    assert r.json()["data"] == {"jobId": "2002", "jobCode": "1005", "jobStatus": "JOB NOT FOUND"}


def test_revoke_tokens_invalidates_minted_tokens(zoho: ZohoSimulator, http: httpx.Client) -> None:
    zoho.add_import_job("1001", "2002", steps_success())
    old = mint(http)
    zoho.revoke_tokens()
    assert poll(http, old).json()["data"]["errorCode"] == 8535
    assert poll(http, mint(http)).json()["data"]["jobCode"] == "1001"


def test_orgs_lists_the_configured_org(http: httpx.Client) -> None:
    r = http.get("/restapi/v2/orgs", headers={"Authorization": f"Zoho-oauthtoken {mint(http)}"})
    assert r.json()["data"]["orgs"] == [{"orgId": "55522777", "orgName": "Demo Org"}]


def test_fail_next_answers_raw_once(zoho: ZohoSimulator, http: httpx.Client) -> None:
    zoho.add_import_job("1001", "2002", steps_success())
    token = mint(http)
    zoho.fail_next("/importjobs/", 503, "<html>Service Unavailable</html>")
    zoho.fail_next("/importjobs/", 429, "", headers={"Retry-After": "7"})
    first, second, third = (poll(http, token) for _ in range(3))
    assert (first.status_code, first.text) == (503, "<html>Service Unavailable</html>")
    assert first.headers["content-type"].startswith("text/html")
    assert (second.status_code, second.headers["retry-after"]) == (429, "7")
    assert third.json()["data"]["jobCode"] == "1001"
    assert zoho.polls("1001", "2002") == 1
