"""Zoho OAuth: data-centre hosts, connection settings, and the shared access-token cache."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZohoHosts:
    accounts: str
    analytics: str
    crm: str


# vendors.md §2.1. uk is left out on purpose: its Analytics and CRM hosts are unconfirmed.
ZOHO_DCS: dict[str, ZohoHosts] = {
    "us": ZohoHosts("accounts.zoho.com", "analyticsapi.zoho.com", "www.zohoapis.com"),
    "eu": ZohoHosts("accounts.zoho.eu", "analyticsapi.zoho.eu", "www.zohoapis.eu"),
    "in": ZohoHosts("accounts.zoho.in", "analyticsapi.zoho.in", "www.zohoapis.in"),
    "au": ZohoHosts("accounts.zoho.com.au", "analyticsapi.zoho.com.au", "www.zohoapis.com.au"),
    "jp": ZohoHosts("accounts.zoho.jp", "analyticsapi.zoho.jp", "www.zohoapis.jp"),
    "cn": ZohoHosts("accounts.zoho.com.cn", "analyticsapi.zoho.com.cn", "www.zohoapis.com.cn"),
    "ca": ZohoHosts("accounts.zohocloud.ca", "analyticsapi.zohocloud.ca", "www.zohoapis.ca"),
    "sa": ZohoHosts("accounts.zoho.sa", "analyticsapi.zoho.sa", "www.zohoapis.sa"),
}


@dataclass(frozen=True)
class ZohoConnection:
    """One Zoho account as the operator configured it (env vars = connection `default`).

    `*_url` fields are origins (`scheme://host[:port]`), already resolved: an operator
    override when given, else the data centre's default host over https.
    `overridden` lists which of `accounts`, `analytics`, `crm` came from an override.
    """

    name: str
    client_id: str
    client_secret: str
    refresh_token: str
    dc: str
    analytics_org_id: str
    accounts_url: str
    analytics_api_url: str
    crm_api_url: str
    overridden: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"ZohoConnection(name={self.name!r}, dc={self.dc!r})"
