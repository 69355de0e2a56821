"""Bad input of every kind, sent as Slack sends it: a clear private answer, and nothing else
happens (no row, no channel post, nothing echoed that could ping or leak)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.runtime import BotProcess
from tests.conftest import SlackDriver, bot_env

ZOHO_TOKEN = "1000." + "a" * 32 + "." + "b" * 32
CASES = [
    ("", "Tell me what to do"),
    ("x" * 4001, "limit is 4,000"),
    ("watch", "needs a vendor"),
    ("watch zoura 2c92c0f96abc17de016abd62bd0c4b2a", "Did you mean `zuora`"),
    ("watch za", "needs a job id"),
    ("watch za 12/ab", "not a Zoho Analytics import job"),
    ("watch za ../../etc/passwd", "not a Zoho Analytics import job"),
    ("watch za 1/2 1/2", "listed twice"),
    ("watch za " + " ".join(f"1/{i}" for i in range(11)), "at most 10"),
    ("watch zuora 2c92c0f9", "32 hex"),
    ("watch crm 12x", "not a Zoho CRM"),
    ("watch micro bad/job", "team"),
    ("watch za 1/2 every 0s", "between 1 second and 24 hours"),
    ("watch za 1/2 as <!channel>", "not a connection name"),
    ("watch <!channel> 1/2", "Unknown vendor"),
    ("watch za <@U0BOSS>", "not a Zoho Analytics import job"),
    ("watch za *bold* `tick` ' OR 1=1 --", "not a Zoho Analytics import job"),
    ("watch zä 1/2", "Unknown vendor"),
    ("sync", "needs exactly one"),
    ("sync 1/2 tz Europe/Berlin", "only applies to a schedule"),
    ("sync 1/2 at 25:99", "a time like"),
    ("sync 1/2 at 0 0 31 2 *", "matches no date"),
    ("sync 1/2 at */5 9 * * *", "runs as often as every 5 minutes"),
    ("sync 1/2 at 06:30 tz Europe", "not a time zone"),
    ("sync 1/2 at 06:30 tz " + "Europe/" * 40 + "Berlin", "not a time zone"),
    ("stop", "needs one watch or schedule id"),
    ("stop <!here>", "not a watch or schedule id"),
    ("stop w7k2 w8k3", "needs one watch or schedule id"),
    ("list everything", "takes no arguments"),
    ("help nonsense", "no help topic"),
    ("frobnicate", "don't know the subcommand"),
    ("watch za 1/2 " + ZOHO_TOKEN, "looks like it contains a password or token"),
    ("watch za 1/2 password=hunter22", "looks like it contains a password or token"),
]


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[tuple[BotProcess, SlackDriver, object]]:
    from bot.simulators.slack import FakeSlackAPI
    from bot.simulators.zoho import ZohoSimulator

    tmp = tmp_path_factory.mktemp("bad-input")
    with FakeSlackAPI() as fake, ZohoSimulator() as zoho:
        bot = BotProcess(Settings.from_env(bot_env(tmp, fake, zoho)))
        bot.start()
        port = bot.serve_http(background=True)
        yield bot, SlackDriver(f"http://127.0.0.1:{port}", fake), fake
        bot.shutdown()


@pytest.mark.parametrize("text, says", CASES)
def test_bad_input_is_answered_privately_and_changes_nothing(running, text, says):
    bot, slack, fake = running
    response, key = slack.slash(text)
    answer = response.text
    if not answer:  # answered after the ack, via response_url
        answer = fake.wait_for(f"respond/{key}")[0].params["text"]
    assert response.status_code == 200
    assert says in answer
    for hostile in ("<!channel>", "<!here>", "<@U0BOSS>", ZOHO_TOKEN, "hunter22"):
        assert hostile not in answer
    assert bot.store.list_watches(statuses=None) == []
    assert bot.store.list_schedules(statuses=None) == []
    assert fake.calls_for("chat.postMessage") == []
