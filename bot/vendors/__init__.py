"""Vendor protocol and registry: every vendor module registers one VendorSpec here."""

from __future__ import annotations

from .base import (
    TERMINAL_STATES,
    AuthError,
    Clock,
    FileRef,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    RefError,
    RequestBudget,
    RequestRejectedError,
    ResultFile,
    State,
    SyncOptions,
    SyncVendor,
    TransientError,
    Vendor,
    VendorContext,
    VendorError,
    VendorSpec,
    build_http_client,
    parse_retry_after,
    status_key,
)

__all__ = [
    "TERMINAL_STATES",
    "AuthError",
    "Clock",
    "FileRef",
    "JobNotFoundError",
    "JobSnapshot",
    "RateLimitedError",
    "RefError",
    "RequestBudget",
    "RequestRejectedError",
    "ResultFile",
    "SPECS",
    "State",
    "SyncOptions",
    "SyncVendor",
    "TransientError",
    "Vendor",
    "VendorContext",
    "VendorError",
    "VendorSpec",
    "build_http_client",
    "lookup",
    "parse_retry_after",
    "status_key",
]


def _load_specs() -> dict[str, VendorSpec]:
    # Imported here, not at module top, so each vendor module can import from .base freely.
    from . import micro, zoho_analytics, zoho_analytics_sync, zoho_crm, zuora

    specs = [zoho_analytics.SPEC, zuora.SPEC, zoho_crm.SPEC, micro.SPEC, zoho_analytics_sync.SPEC]
    return {spec.key: spec for spec in specs}


SPECS: dict[str, VendorSpec] = _load_specs()
_BY_NAME: dict[str, VendorSpec] = {
    name: spec for spec in SPECS.values() for name in (spec.key, *spec.aliases)
}


def lookup(name: str) -> VendorSpec | None:
    """The spec for a vendor key or alias, case-insensitively; None when unknown."""
    return _BY_NAME.get(name.strip().lower())
