"""Pasted vendor links: every supported shape yields the vendor and ids; nothing is fetched."""

from __future__ import annotations

import pytest

from bot.grammar import CommandError, WatchLinksRequest, parse
from bot.urls import UrlError, parse_url

TEAM = "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64"


@pytest.mark.parametrize(
    "url, vendor, ref",
    [
        (
            "https://analyticsapi.zoho.eu/restapi/v2/bulk/workspaces/2480011000000498001"
            "/importjobs/2480011000000512007",
            "zoho-analytics",
            "2480011000000498001/2480011000000512007",
        ),
        (
            "https://rest.eu.zuora.com/v1/batch-query/jobs/2C92C0F96ABC17DE016ABD62BD0C4B2A/",
            "zuora",
            "2C92C0F96ABC17DE016ABD62BD0C4B2A",
        ),
        (
            "https://www.zohoapis.com/crm/bulk/v8/write/6120045000001938011",
            "zoho-crm",
            "6120045000001938011",
        ),
        (
            "https://www.zohoapis.in/crm/bulk/v2/write/6120045000001938011?x=1",
            "zoho-crm",
            "6120045000001938011",
        ),
        (
            f"https://developers.micro.so/v2/prism/{TEAM}/imports/imp_8QmZ2vK4tR",
            "micro",
            f"{TEAM}/imp_8QmZ2vK4tR",
        ),
        (
            f"<https://developers.micro.so/v2/prism/{TEAM}/imports/imp_1|link>",
            "micro",
            f"{TEAM}/imp_1",
        ),
    ],
)
def test_supported_links(url, vendor, ref):
    assert parse_url(url) == (vendor, ref)


@pytest.mark.parametrize(
    "url, says",
    [
        ("ftp://rest.zuora.com/v1/batch-query/jobs/" + "a" * 32, "only http(s)"),
        ("https://rest.zuora.com/v1/batch-query/jobs/" + "a" * 31, "isn't one of the job links"),
        ("https://rest.zuora.com/v1/batch-query/jobs/../../etc", "isn't one of the job links"),
        (
            "https://analyticsapi.zoho.com/restapi/v2/workspaces/1/datasources/2/sync",
            "run `/syncwatch sync 1/2`",
        ),
    ],
)
def test_other_links_say_what_is_wrong(url, says):
    with pytest.raises(UrlError) as err:
        parse_url(url)
    assert says in str(err.value)


def test_several_links_of_several_vendors_make_one_request():
    request = parse(
        "watch https://www.zohoapis.com/crm/bulk/v8/write/61 "
        "https://rest.zuora.com/v1/batch-query/jobs/" + "ab" * 16 + " every 30s"
    )
    assert request == WatchLinksRequest((("zoho-crm", "61"), ("zuora", "ab" * 16)), "default", 30.0)


def test_a_word_that_is_not_a_link_among_links_is_refused():
    with pytest.raises(CommandError) as err:
        parse("watch https://www.zohoapis.com/crm/bulk/v8/write/61 62")
    assert "isn't a link" in err.value.message


def test_link_ids_are_validated_like_typed_ones():
    with pytest.raises(CommandError) as err:
        parse("watch https://www.zohoapis.com/crm/bulk/v8/write/" + "1" * 21)
    assert "isn't one of the job links" in err.value.message or "digits" in err.value.message
