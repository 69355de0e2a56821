"""`syncwatch demo`: the real bot against built-in vendor simulators and a local Slack
stand-in, driven by a short scripted session and printed to the terminal as it happens."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

import httpx

from bot.api import credentials
from bot.config import Settings
from bot.runtime import BotProcess
from bot.simulators.micro import MicroSimulator
from bot.simulators.micro import steps_partial as micro_partial
from bot.simulators.slack import FakeSlackAPI, Message
from bot.simulators.zoho import (
    ZohoSimulator,
    steps_failure,
    steps_success,
    sync_outcome_partial,
)
from bot.simulators.zoho_crm import ZohoCrmSimulator, sample_result_csv, steps_with_skips
from bot.simulators.zuora import FILE_IDS, ZuoraSimulator, steps_failed, steps_two_batches
from storage import DONE, ChannelSettings

CHANNEL, CHANNEL_NAME = "C0DEMO", "#revops-imports"
USERS = {
    "U0ALICE": "alice",
    "U0BOB": "bob",
    "U0CAROL": "carol",
    "U0DANA": "dana",
    "U0ERIN": "erin",
    "U0FRANK": "frank",
    "U0GINA": "gina",
    "U0HANK": "hank",
    "UBOT": "syncwatch",
}
SIGNING_SECRET = "demo-signing-secret"
WS = "2480011000000498001"
JOB_OK, JOB_BAD = "2480011000000512007", "2480011000000512019"
AQUA_OK, AQUA_BAD = "2c92c0f96abc17de016abd62bd0c4b2a", "2c92c0f96abc17de016abd62bd0c4b3f"
INVOICES_CSV = (
    b"Invoice: Number,Invoice: Amount,Invoice: Status\n"
    b"INV-00017,1200.00,Posted\nINV-00018,310.50,Posted\nINV-00019,89.90,Draft\n"
)
AQUA_SCRIPT = "2c92c0f96abc17de016abd62bd0c4c11"  # started by a script, through the API
MICRO_JOB = "imp_8QmZ2vK4tR"
CRM_JOB = "6120045000001938011"
DATASOURCE = "2480011000000630011"
PAYMENTS_CSV = b"Payment: Number,Payment: Amount\nP-00301,1200.00\nP-00302,310.50\n"

EMOJI = {
    ":white_check_mark:": "✅",
    ":x:": "❌",
    ":warning:": "⚠️ ",
    ":hourglass_flowing_sand:": "⏳",
    ":hourglass:": "⌛",
    ":arrows_counterclockwise:": "🔄",
    ":mag:": "🔍",
    ":octagonal_sign:": "🛑",
    ":eyes:": "👀",
    ":grey_question:": "❓",
    ":no_entry_sign:": "🚫",
    ":construction:": "🚧",
    ":double_vertical_bar:": "⏸ ",
    ":information_source:": "ℹ️ ",
    ":calendar:": "📅",
}


class Terminal:
    """Renders Slack mrkdwn and Block Kit as plain terminal text."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.color = out.isatty()
        self.lock = threading.Lock()

    def style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def plain(self, text: str) -> str:
        for code, symbol in EMOJI.items():
            text = text.replace(code, symbol)
        text = re.sub(r"<@(\w+)>", lambda m: "@" + USERS.get(m.group(1), m.group(1)), text)
        text = re.sub(r"<#(\w+)>", lambda m: CHANNEL_NAME if m.group(1) == CHANNEL else "#?", text)
        # No run in these may cross a `<`: each scan then ends at the next token, and a text
        # of many unclosed `<!date^…` or `<http…` stays linear (mrkdwn escapes `<` in text).
        text = re.sub(r"<!date\^\d+\^[^|<>]*\|([^<>]*)>", r"\1", text)
        text = re.sub(r"<(https?://[^|<>]+)\|([^<>]*)>", r"\2 (\1)", text)
        text = re.sub(r"\*([^*\n]+)\*", lambda m: self.style(m.group(1), "1"), text)
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def blocks_text(self, message: Message) -> str:
        lines: list[str] = []
        for block in message.blocks or []:
            kind = block.get("type")
            if kind == "section":
                if block.get("text"):
                    lines.append(self.plain(block["text"]["text"]))
                for field in block.get("fields", []):
                    lines.append("  " + self.plain(field["text"]).replace("\n", ": ", 1))
            elif kind == "context":
                lines.append(
                    self.style(" · ".join(self.plain(e["text"]) for e in block["elements"]), "2")
                )
            elif kind == "actions":
                buttons = "  ".join(f"[ {e['text']['text']} ]" for e in block["elements"])
                lines.append(self.style(buttons, "36"))
        return "\n".join(lines) if lines else self.plain(message.text)

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, file=self.out, flush=True)

    def indent(self, text: str, prefix: str) -> str:
        return "\n".join(prefix + line for line in text.splitlines())


def _signed_post(base_url: str, form: dict[str, str]) -> httpx.Response:
    body = urlencode(form)
    stamp = str(int(time.time()))
    signature = hmac.new(
        SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256
    ).hexdigest()
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={signature}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return httpx.post(f"{base_url}/slack/events", content=body, headers=headers, timeout=10)


class DemoSession:
    def __init__(self, term: Terminal, slack: FakeSlackAPI, base_url: str) -> None:
        self.term = term
        self.slack = slack
        self.base_url = base_url
        self.n = 0

    def command(self, user: str, text: str) -> None:
        """Type a slash command as `user`; print what only they see."""
        self.n += 1
        key = f"demo{self.n}"
        name = USERS[user]
        self.term.say(self.term.style(f"\n{name} types: /syncwatch {text}", "33"))
        form = {
            "command": "/syncwatch",
            "text": text,
            "team_id": "T1",
            "user_id": user,
            "channel_id": CHANNEL,
            "response_url": self.slack.response_url(key),
            "trigger_id": key,
        }
        response = _signed_post(self.base_url, form)
        answer: dict[str, Any] = {}
        if response.content:
            answer = (
                response.json()
                if "json" in response.headers.get("content-type", "")
                else {"text": response.text}
            )
        if not answer.get("text"):
            found = self.slack.wait_for(f"respond/{key}", timeout=10)
            answer = found[0].params
        shown = self.term.blocks_text(
            Message("", "", answer.get("text", ""), answer.get("blocks") or [])
        )
        if not answer.get("blocks"):
            shown = self.term.plain(answer.get("text", ""))
        label = self.term.style(f"  (only {name} sees this)", "2")
        self.term.say(label)
        self.term.say(self.term.indent(shown, "  │ "))


def run_demo(*, fast: bool = False, out: TextIO | None = None, timeout: float = 90.0) -> int:
    """Run the scripted session; returns 0 when every watch ended as scripted."""
    out = out or sys.stdout
    term = Terminal(out)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    pause = 0.0 if fast else 1.0
    with (
        FakeSlackAPI() as slack,
        ZohoSimulator() as zoho,
        ZuoraSimulator() as zuora,
        MicroSimulator() as micro,
        ZohoCrmSimulator(zoho=zoho) as crm,
        tempfile.TemporaryDirectory() as tmp,
    ):
        zoho.add_datasource(WS, DATASOURCE, after_sync=sync_outcome_partial(polls_waiting=2))
        crm.add_job(CRM_JOB, steps_with_skips(CRM_JOB, crm.add_zip("result", sample_result_csv())))
        micro.add_job(MICRO_JOB, micro_partial(MICRO_JOB, polls_processing=2))
        zuora.add_job(AQUA_OK, steps_two_batches(AQUA_OK, records=(3, 2)))
        zuora.add_file(FILE_IDS[0], INVOICES_CSV)
        zuora.add_file(FILE_IDS[1], PAYMENTS_CSV)
        zuora.add_job(AQUA_BAD, steps_failed(AQUA_BAD, code="90029"))
        # The script's query runs a while: its callback, not a poll, brings the news.
        running = steps_two_batches(AQUA_SCRIPT, records=(3, 2))
        zuora.add_job(AQUA_SCRIPT, [running[0]] * 6 + running[1:])
        slack.set_channel(CHANNEL, creator="U0ALICE")  # alice made the channel: she may make tokens
        zoho.add_import_job(WS, JOB_OK, steps_success(total_rows=1200, polls_running=3))
        zoho.add_import_job(
            WS,
            JOB_BAD,
            steps_failure(
                error_text="Row 17, column 'Amount': expected a number but found 'twelve'",
                polls_running=2,
            ),
        )
        env = {
            "SLACK_BOT_TOKEN": "xoxb-demo",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "SYNCWATCH_DB": str(Path(tmp) / "demo.db"),
            "SYNCWATCH_HOST": "127.0.0.1",
            "PORT": "0",
            "SYNCWATCH_POLL_INTERVAL": "1",
            "ZOHO_CLIENT_ID": zoho.client_id,
            "ZOHO_CLIENT_SECRET": zoho.client_secret,
            "ZOHO_REFRESH_TOKEN": zoho.refresh_token,
            "ZOHO_ACCOUNTS_URL": zoho.url,
            "ZOHO_ANALYTICS_API_URL": zoho.url,
            "ZOHO_ANALYTICS_ORG_ID": zoho.org_id,
            "ZOHO_CRM_API_URL": crm.root,
            "ZUORA_CLIENT_ID": zuora.client_id,
            "ZUORA_CLIENT_SECRET": zuora.client_secret,
            "ZUORA_BASE_URL": zuora.url,
            "MICRO_API_KEY": micro.api_key,
            "MICRO_TEAM_ID": micro.team_id,
            "MICRO_BASE_URL": micro.url,
        }
        settings = Settings.from_env(env)
        # The demo's Slack is a local stand-in with no rate limits: pacing our posts as for
        # the real one (about one a second per channel) would only make you wait.
        bot = BotProcess(settings, pace_slack=False)
        slack.on_change(lambda kind, message: _print_change(term, slack, kind, message))
        bot.start()
        port = bot.serve_http(background=True)
        term.say(term.style("syncwatch demo", "1"))
        term.say(
            f"A local Slack stand-in and simulated Zoho Analytics, Zoho CRM, Zuora and Micro on "
            f"127.0.0.1; the bot is the real one, serving http://127.0.0.1:{port}/slack/events."
            f"\nChannel {CHANNEL_NAME} (failures also sent to the channel): alice and bob "
            "watch Zoho imports, dana and erin Zuora "
            "queries, frank a Micro import, gina a CRM bulk write, hank runs a datasource "
            "sync; carol mistypes; alice makes an API token, a nightly script announces its "
            "Zuora query with it, and Zuora's callback says when it is done."
        )
        session = DemoSession(term, slack, f"http://127.0.0.1:{port}")
        try:
            session.command("U0ALICE", "help")
            time.sleep(pause)
            _broadcast_failures(term, bot)
            session.command("U0ALICE", f"watch za {WS}/{JOB_OK}")
            time.sleep(pause)
            session.command("U0BOB", f"watch zoho-analytics {WS}/{JOB_BAD}")
            time.sleep(pause)
            time.sleep(pause)
            session.command("U0DANA", f"watch zuora {AQUA_OK}")
            time.sleep(pause)
            session.command("U0ERIN", f"watch aqua {AQUA_BAD}")
            time.sleep(pause)
            session.command("U0FRANK", f"watch micro {MICRO_JOB}")
            time.sleep(pause)
            session.command("U0GINA", f"watch crm {CRM_JOB}")
            time.sleep(pause)
            session.command("U0HANK", f"sync {WS}/{DATASOURCE}")
            time.sleep(pause)
            session.command("U0HANK", f"sync {WS}/{DATASOURCE} at 06:30 alert failures")
            time.sleep(pause)
            session.command("U0CAROL", "watch zoho-analytic 12/34")
            time.sleep(pause)
            _script_and_callback(term, session, zuora)
            ok = _wait_for_outcomes(bot, timeout, expected=8)
            time.sleep(0.3)  # let the last callbacks print
            _print_transcript(term, slack)
        finally:
            bot.shutdown()
        if not ok:
            term.say("The demo did not finish in time; see the messages above.")
            return 1
        term.say(
            "\nThat's the whole loop. Next: create the Slack app from manifest.yml and run "
            "`syncwatch run` (see README)."
        )
        return 0


def _broadcast_failures(term: Terminal, bot: BotProcess) -> None:
    """alice, an admin, saves the channel's settings form with one change: failures are
    also sent to the channel (what `/syncwatch settings` stores; docs/architecture.md
    #channel-settings)."""
    term.say(
        term.style(
            f"\nalice opens /syncwatch settings and turns on "
            f"“Broadcast failures” for {CHANNEL_NAME}",
            "33",
        )
    )
    settings = ChannelSettings(
        CHANNEL, broadcast_failures=True, updated_by="U0ALICE", updated_at=time.time()
    )
    bot.store.save_channel_settings(settings)


def _script_and_callback(term: Terminal, session: DemoSession, zuora: ZuoraSimulator) -> None:
    """alice makes a token; a script starts a watch with it; Zuora calls back."""
    session.command("U0ALICE", "token create nightly-etl")
    answer = session.slack.wait_for(f"respond/demo{session.n}", timeout=10)[0].params["text"]
    token = "swt_" + answer.split("`swt_", 1)[1].split("`", 1)[0]
    base = session.base_url
    term.say(term.style("\nthe nightly script: POST /api/v1/watches (Bearer swt_…)", "35"))
    created = httpx.post(
        f"{base}/api/v1/watches",
        headers={"Authorization": f"Bearer {token}"},
        json={"vendor": "zuora", "ref": AQUA_SCRIPT},
        timeout=10,
    )
    watch = created.json()
    term.say(f"  → {created.status_code} watch {watch['id']}, status {watch['status']}")
    time.sleep(1.5)
    key = credentials.hook_key(credentials.digest(token))
    url = f"/hooks/zuora/{key[:8]}…?job={AQUA_SCRIPT[:8]}…&status=Completed"
    term.say(term.style(f"\nZuora's notifyUrl: GET {url}", "35"))
    called = httpx.get(
        f"{base}/hooks/zuora/{key}",
        params={"job": AQUA_SCRIPT, "status": "Completed"},
        timeout=10,
    )
    term.say(f"  → {called.status_code} {called.json()['status']} {called.json()['watches']}")


def _wait_for_outcomes(bot: BotProcess, timeout: float, expected: int) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watches = bot.store.list_watches(statuses=None)
        done = len(watches) == expected and all(w.status == DONE for w in watches)
        backlog, _ = bot.store.outbox_backlog(time.time())
        if done and backlog == 0:
            return True
        time.sleep(0.1)
    return False


def _print_change(term: Terminal, slack: FakeSlackAPI, kind: str, message: Message) -> None:
    stamp = time.strftime("%H:%M:%S")
    where = "in the thread" if message.thread_ts else f"in {CHANNEL_NAME}"
    if kind == "post":
        verb = "replied" if message.thread_ts else "posted"
        if message.broadcast:
            where = f"in the thread, also sent to {CHANNEL_NAME}"
    elif kind == "update":
        verb = "edited its message"
    else:
        verb = "attached a file"
    head = term.style(f"[{stamp}] syncwatch {verb} {where}", "32")
    body = term.blocks_text(message) if kind != "file" else _file_line(term, slack, message)
    prefix = "      ┆ " if message.thread_ts else "  │ "
    term.say(head)
    if kind == "update":
        body = "\n".join(body.splitlines()[:2])  # the edit: just the headline
    term.say(term.indent(body, prefix))


def _file_line(term: Terminal, slack: FakeSlackAPI, message: Message) -> str:
    lines = []
    for file_id, title, filename in message.files:
        data = slack.uploads.get(file_id, b"")
        lines.append(f"📎 {filename} ({len(data)} bytes) — {title}")
        preview = data.decode("utf-8", "replace").splitlines()[:4]
        lines.extend("   " + line for line in preview)
    if message.text:
        lines.insert(0, term.plain(message.text))
    return "\n".join(lines)


def _print_transcript(term: Terminal, slack: FakeSlackAPI) -> None:
    term.say(term.style(f"\n═══ {CHANNEL_NAME}, as it reads now ═══", "1"))
    for parent in slack.messages(CHANNEL):
        term.say(term.indent(term.blocks_text(parent), "  │ "))
        for reply in slack.thread(CHANNEL, parent.ts):
            body = _file_line(term, slack, reply) if reply.files else term.blocks_text(reply)
            term.say(term.indent(body, "      ┆ "))
        term.say("")
