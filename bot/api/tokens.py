"""Which API tokens exist, and the Slack use cases that make, list and revoke them.

`TokenBook` answers "whose token is this?" for the API and its callbacks, over the config
file's tokens (in memory) and the database's. `TokenAdmin` is what `/syncwatch token …`
does: only admins may create or revoke (docs/architecture.md#api-tokens).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot import blocks, texts
from bot.api import credentials
from bot.config import Settings
from bot.grammar import TokenRequest
from bot.redaction import Redactor
from bot.service import Requester, saves
from bot.slack import ChannelFacts
from bot.vendors import SPECS
from storage import (
    ActorKind,
    ApiToken,
    AuditEntry,
    DatabaseUnavailable,
    Store,
    TokenNameTaken,
    Via,
)

log = logging.getLogger(__name__)

# What each vendor calls the field its callback URL goes in, and what the URL carries after
# the key (docs/vendors.md#vendor-callbacks).
HOOK_FIELDS: dict[str, tuple[str, str]] = {
    "zuora": ("notifyUrl", "?job=${JOBID}&status=${STATUS}"),
    "zoho-analytics": ("callbackUrl", "?workspace=<workspace-id>"),
    "zoho-crm": ("callback.url", ""),
}


# `created_by` of a token an operator made with `syncwatch token create` (not a Slack user).
OPERATOR_PREFIX = "operator:"


def hook_path(vendor: str, key: str) -> str:
    return f"/hooks/{vendor}/{key}{HOOK_FIELDS.get(vendor, ('', ''))[1]}"


def hook_url(public_url: str, vendor: str, key: str) -> str:
    return public_url.rstrip("/") + hook_path(vendor, key)


class TokenBook:
    """Every token there is: the config file's `[tokens.<name>]` and those made in Slack."""

    def __init__(self, store: Store, configured: Mapping[str, ApiToken]) -> None:
        self.store = store
        self.configured = dict(configured)

    def authenticate(self, bearer: str | None) -> ApiToken | None:
        """The token `bearer` is, or None (missing, malformed, wrong and revoked alike)."""
        if not bearer or not credentials.TOKEN_SHAPE.match(bearer):
            return None
        return self._find(credentials.digest(bearer), "digest", self.store.token_by_digest)

    def by_hook_key(self, key: str) -> ApiToken | None:
        if not key.startswith(credentials.HOOK_PREFIX) or len(key) > 64:
            return None
        return self._find(credentials.digest(key), "hook_digest", self.store.token_by_hook)

    def _find(
        self, wanted: str, field: str, stored: Callable[[str], ApiToken | None]
    ) -> ApiToken | None:
        found = None
        for token in self.configured.values():  # all of them: the time says nothing
            if credentials.same(getattr(token, field), wanted):
                found = token
        if found is not None:
            return found
        token = stored(wanted)
        return (
            token if token is not None and credentials.same(getattr(token, field), wanted) else None
        )

    def named(self, name: str) -> ApiToken | None:
        return self.configured.get(name) or self.store.token_named(name)

    def all(self) -> list[ApiToken]:
        stored = [t for t in self.store.list_tokens() if t.name not in self.configured]
        return sorted([*self.configured.values(), *stored], key=lambda t: t.name)


class TokenAdmin:
    """`/syncwatch token create | list | revoke`. Create and revoke need Slack's facts about
    the token's channels (who created them, whether the bot is in them): the listener asks
    Slack after the ack and passes them in."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        book: TokenBook,
        *,
        clock: Callable[[], float],
        redactor: Redactor,
    ) -> None:
        self.store = store
        self.settings = settings
        self.book = book
        self.clock = clock
        self.redactor = redactor

    def channels_to_check(self, request: TokenRequest, who: Requester) -> tuple[str, ...]:
        """The channels whose facts `handle` needs (none for `list`)."""
        if request.action == "create":
            return request.channels or (who.channel_id,)
        if request.action == "revoke":
            token = self.book.named(request.name)
            return token.channels if token is not None else ()
        return ()

    def handle(
        self, request: TokenRequest, who: Requester, facts: Mapping[str, ChannelFacts]
    ) -> blocks.Message:
        if request.action == "create":
            return self.create(request.name, self.channels_to_check(request, who), who, facts)
        if request.action == "revoke":
            return self.revoke(request.name, who, facts)
        return self.list_for(who)

    def _may_administer(
        self, user_id: str, channels: Sequence[str], facts: Mapping[str, ChannelFacts]
    ) -> bool:
        """docs/architecture.md#permissions: the config's admins; with none set, whoever
        created every one of the token's channels."""
        if self.settings.admins:
            return user_id in self.settings.admins
        return bool(channels) and all(
            (f := facts.get(c)) is not None and f.creator == user_id for c in channels
        )

    @saves
    def create(
        self,
        name: str,
        channels: Sequence[str],
        who: Requester,
        facts: Mapping[str, ChannelFacts],
    ) -> blocks.Message:
        if not self._may_administer(who.user_id, channels, facts):
            return blocks.render_notice(
                texts.not_token_admin("create API tokens", bool(self.settings.admins))
            )
        for channel in channels:
            fact = facts.get(channel)
            problem = fact.problem if fact is not None else "not checked"
            if problem is not None:
                return blocks.render_notice(
                    texts.token_channel_problem(channel, problem.replace("_", " "))
                )
        if name in self.book.configured:
            return blocks.render_notice(texts.token_name_taken(name))
        secret = credentials.new_token()
        token_digest = credentials.digest(secret)
        key = credentials.hook_key(token_digest)
        # From here on no log line can carry them, even by accident.
        self.redactor.remember(("api-token", name), secret)
        self.redactor.remember(("api-hook", name), key)
        token = ApiToken(
            name=name,
            digest=token_digest,
            hook_digest=credentials.digest(key),
            channels=tuple(channels),
            created_by=who.user_id,
            created_at=self.clock(),
        )
        try:
            with self.store.audited():
                self.store.add_token(token)
                detail = {"token": name, "channels": list(channels)}
                self.store.audit(who.audit("token.create", token.created_at, detail=detail))
        except TokenNameTaken:
            return blocks.render_notice(texts.token_name_taken(name))
        log.info("API token %s created by %s for %s", name, who.user_id, ", ".join(channels))
        return blocks.render_notice(
            texts.token_created(name, secret, _channel_list(channels), self.hook_lines(key))
        )

    def hook_lines(self, key: str) -> str:
        lines = []
        for vendor, (field, _) in HOOK_FIELDS.items():
            spec = SPECS.get(vendor)
            label = spec.label if spec else vendor
            if self.settings.public_url:
                where = hook_url(self.settings.public_url, vendor, key)
            else:
                where = hook_path(vendor, key)
            lines.append(texts.hook_url_line(label, field, blocks.esc(where)))
        listed = "\n".join(lines)
        return listed if self.settings.public_url else texts.hooks_need_public_url(listed)

    @saves
    def revoke(
        self, name: str, who: Requester, facts: Mapping[str, ChannelFacts]
    ) -> blocks.Message:
        token = self.book.named(name)
        if token is None:
            return blocks.render_notice(texts.no_such_token(name))
        if token.source == "config":
            return blocks.render_notice(texts.token_in_config(name))
        if not self._may_administer(who.user_id, token.channels, facts):
            return blocks.render_notice(
                texts.not_token_admin("revoke API tokens", bool(self.settings.admins))
            )
        now = self.clock()
        with self.store.audited():
            revoked = self.store.revoke_token(name)
            if revoked:
                detail = {"token": name, "channels": list(token.channels)}
                self.store.audit(who.audit("token.revoke", now, detail=detail))
        if not revoked:
            return blocks.render_notice(texts.no_such_token(name))
        log.info("API token %s revoked by %s", name, who.user_id)
        return blocks.render_notice(texts.token_revoked(name))

    def list_for(self, who: Requester) -> blocks.Message:
        """Tokens of this channel (admins: every one). Names and channels only."""
        try:
            tokens = self.book.all()
        except DatabaseUnavailable as err:
            return blocks.render_notice(texts.cant_read(err.reason))
        if who.user_id not in self.settings.admins:
            tokens = [t for t in tokens if who.channel_id in t.channels]
        if not tokens:
            return blocks.render_notice(texts.NO_TOKENS_HERE)
        lines = []
        for t in tokens:
            origin = (
                "config file"
                if t.source == "config"
                else (
                    f"made by <@{t.created_by}> {blocks.slack_date(t.created_at, '{date_short}')}"
                )
            )
            if (t.created_by or "").startswith(OPERATOR_PREFIX):
                operator = blocks.esc(t.created_by.removeprefix(OPERATOR_PREFIX))
                origin = f"made at the command line by {operator}"
            lines.append(texts.token_list_line(t.name, _channel_list(t.channels), origin))
        return blocks.render_notice("*API tokens*\n" + "\n".join(lines))


def operator_entry(action: str, operator: str, at: float, detail: dict[str, Any]) -> AuditEntry:
    """The audit row of a token change made at the command line (docs/operations.md#audit)."""
    return AuditEntry(
        action=action,
        actor_kind=ActorKind.OPERATOR,
        actor=operator,
        via=Via.CLI,
        at=at,
        detail=detail,
    )


def _channel_list(channels: Sequence[str]) -> str:
    return ", ".join(f"<#{c}>" for c in channels)
