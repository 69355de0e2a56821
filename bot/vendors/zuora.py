"""Zuora AQuA batch-query jobs: OAuth client credentials, job/batch states, result files."""

from __future__ import annotations

from dataclasses import dataclass

# vendors.md §5.1: ZUORA_ENV name -> base URL. API Sandbox hosts have a far smaller budget.
ZUORA_ENVS: dict[str, str] = {
    "us-prod": "https://rest.zuora.com",
    "us-sandbox": "https://rest.apisandbox.zuora.com",
    "us-pt1": "https://rest.pt1.zuora.com",
    "us-cloud-prod": "https://rest.na.zuora.com",
    "us-cloud-sandbox": "https://rest.sandbox.na.zuora.com",
    "us-central-sandbox": "https://rest.test.zuora.com",
    "eu-prod": "https://rest.eu.zuora.com",
    "eu-sandbox": "https://rest.sandbox.eu.zuora.com",
    "eu-central-sandbox": "https://rest.test.eu.zuora.com",
    "ap-prod": "https://rest.ap.zuora.com",
    "ap-central-sandbox": "https://rest.test.ap.zuora.com",
}
API_SANDBOX_HOSTS = frozenset(
    {"rest.apisandbox.zuora.com", "rest.sandbox.na.zuora.com", "rest.sandbox.eu.zuora.com"}
)


@dataclass(frozen=True)
class ZuoraConnection:
    """One Zuora tenant as configured. `base_url` is an origin: ZUORA_BASE_URL when set,
    else the ZUORA_ENV entry. `overridden` is True when it came from ZUORA_BASE_URL."""

    name: str
    client_id: str
    client_secret: str
    base_url: str
    env: str | None = None
    overridden: bool = False

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"ZuoraConnection(name={self.name!r}, base_url={self.base_url!r})"
