"""Vendor protocol and registry: every vendor module registers one VendorSpec here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .base import (
    TERMINAL_STATES,
    AnyVendor,
    AuthError,
    Clock,
    Connection,
    FileRef,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    RefError,
    RequestBudget,
    RequestRejectedError,
    ResultFile,
    SeenKeys,
    State,
    SyncOptions,
    SyncVendor,
    TransientError,
    Vendor,
    VendorClient,
    VendorContext,
    VendorError,
    VendorSpec,
    build_http_client,
    connection_of,
    parse_retry_after,
    status_key,
)

__all__ = [
    "TERMINAL_STATES",
    "AnyVendor",
    "AuthError",
    "Clock",
    "Connection",
    "FileRef",
    "JobNotFoundError",
    "JobSnapshot",
    "RateLimitedError",
    "RefError",
    "RequestBudget",
    "RequestRejectedError",
    "ResultFile",
    "SPECS",
    "SeenKeys",
    "State",
    "SyncOptions",
    "SyncVendor",
    "TransientError",
    "Vendor",
    "VendorClient",
    "VendorContext",
    "VendorError",
    "VendorSpec",
    "build_http_client",
    "connection_of",
    "lookup",
    "parse_retry_after",
    "status_key",
]


def _load_specs() -> dict[str, VendorSpec]:
    # Imported here, not at module top, so each vendor module can import from .base freely.
    from . import micro, zoho_analytics, zoho_analytics_sync, zoho_crm, zuora

    specs = [zoho_analytics.SPEC, zuora.SPEC, zoho_crm.SPEC, micro.SPEC, zoho_analytics_sync.SPEC]
    return {spec.key: spec for spec in specs}


# Read-only once built: the registry is fixed at import, never filled or changed later.
SPECS: Mapping[str, VendorSpec] = MappingProxyType(_load_specs())
_BY_NAME: Mapping[str, VendorSpec] = MappingProxyType(
    {name: spec for spec in SPECS.values() for name in (spec.key, *spec.aliases)}
)


def lookup(name: str) -> VendorSpec | None:
    """The spec for a vendor key or alias, case-insensitively; None when unknown."""
    return _BY_NAME.get(name.strip().lower())
