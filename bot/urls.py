"""Pure: a pasted vendor URL -> (vendor key, job ref). URLs are parsed for ids, never fetched."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit


class UrlError(ValueError):
    """A URL syncwatch can't turn into a job reference; the message says what it expects."""


@dataclass(frozen=True)
class UrlShape:
    vendor: str
    example: str
    path: re.Pattern[str]

    def ref(self, match: re.Match[str]) -> str:
        return "/".join(g for g in match.groups() if g)


# API URLs as the vendors document them (docs/vendors.md); the host is not checked because
# nothing is fetched: the ids are validated by the vendor's parse_ref like typed ones.
URL_SHAPES = (
    UrlShape(
        "zoho-analytics",
        "https://analyticsapi.zoho.com/restapi/v2/bulk/workspaces/<ws>/importjobs/<job>",
        re.compile(r"^/restapi/v2/bulk/workspaces/([0-9]{1,20})/importjobs/([0-9]{1,20})/?$"),
    ),
    UrlShape(
        "zuora",
        "https://rest.zuora.com/v1/batch-query/jobs/<job-id>",
        re.compile(r"^/v1/batch-query/jobs/([0-9a-fA-F]{32})/?$"),
    ),
    UrlShape(
        "zoho-crm",
        "https://www.zohoapis.com/crm/bulk/v8/write/<job-id>",
        re.compile(r"^/crm/bulk/v[2-9]/write/([0-9]{1,20})/?$"),
    ),
    UrlShape(
        "micro",
        "https://developers.micro.so/v2/prism/<team-id>/imports/<job-id>",
        re.compile(
            r"^/v2/prism/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
            r"-[0-9a-fA-F]{12})/imports/([A-Za-z0-9_-]{1,128})/?$"
        ),
    ),
)
_SYNC_PATH = re.compile(
    r"^/restapi/v2/workspaces/([0-9]{1,20})/datasources?/([0-9]{1,20})(?:/sync)?/?$"
)


def looks_like_url(word: str) -> bool:
    return "://" in word


def parse_url(raw: str) -> tuple[str, str]:
    """(vendor key, job ref) for a supported vendor API URL; UrlError otherwise."""
    text = raw.strip().strip("<>").split("|", 1)[0]  # Slack may wrap links as <url|label>
    try:
        parts = urlsplit(text)
    except ValueError:
        raise UrlError("that link can't be read") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlError("only http(s) links are understood")
    for shape in URL_SHAPES:
        match = shape.path.match(parts.path)
        if match:
            return shape.vendor, shape.ref(match)
    sync = _SYNC_PATH.match(parts.path)
    if sync:
        raise UrlError(
            f"that is a datasource, not a job: run `/syncwatch sync {sync.group(1)}/"
            f"{sync.group(2)}` to sync it and watch the outcome"
        )
    raise UrlError("it isn't one of the job links I know (see `/syncwatch help vendors`)")
