"""Reading a job out of a vendor's callback (pure).

Callback payloads are unsigned and, for Zoho, undocumented (docs/vendors.md#vendor-callbacks),
so only the job id is taken from one, and the poll that follows decides the job's state:
a forged callback costs at most one poll, within the vendor's budget.

The id is looked for in the query string first (`job`, `jobId`, `id`: Zuora's `notifyUrl`
template is `…?job=${JOBID}&status=${STATUS}`), then in the body's fields of those names,
then in any body field that holds a valid id for the vendor: a JSON body at any depth, or
a form. A Zoho Analytics ref also needs the workspace: `workspace` (or `workspaceId`) in
the query, as the callback URL carries it, or in the body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import parse_qs

from bot.vendors import RefError, VendorSpec

# Field names compared without case, `_` or `-`: jobId, job_id and JOB-ID are one name.
JOB_KEYS = ("job", "jobid", "id")
WORKSPACE_KEYS = ("workspace", "workspaceid", "ws")
MAX_FIELDS = 2000  # fields of a body looked at: a 64 KB body holds no more worth reading
MAX_DEPTH = 20


def job_ref(spec: VendorSpec, query: str, body: bytes, content_type: str = "") -> str | None:
    """The vendor's canonical job ref named by a callback, or None."""
    params = parse_qs(query, keep_blank_values=False)
    from_query = [(k, v) for k, values in params.items() for v in values]
    fields = list(_body_fields(body, content_type))
    named = [v for k, v in from_query if _norm(k) in JOB_KEYS]
    named += [v for k, v in fields if _norm(k) in JOB_KEYS]
    others = [v for k, v in fields if _norm(k) not in JOB_KEYS + WORKSPACE_KEYS]
    workspaces = [v for k, v in from_query + fields if _norm(k) in WORKSPACE_KEYS]
    for candidate in [*named, *others]:
        ref = _as_ref(spec, candidate, workspaces)
        if ref is not None:
            return ref
    return None


def _as_ref(spec: VendorSpec, value: str, workspaces: Sequence[str]) -> str | None:
    value = value.strip()
    if not value or len(value) > 200:
        return None
    tries = [value]
    if "/" not in value:
        tries += [f"{ws.strip()}/{value}" for ws in workspaces[:3]]
    for text in tries:
        try:
            return spec.parse_ref(text)
        except RefError:
            continue
    return None


def _norm(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _body_fields(body: bytes, content_type: str) -> Iterator[tuple[str, str]]:
    """(name, text) of every scalar field of a JSON or form body, in order."""
    if not body:
        return
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return
    stripped = text.lstrip()
    if "json" in content_type or stripped[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return
        yield from _walk(data, "", 0, [0])
        return
    for key, values in parse_qs(text, keep_blank_values=False).items():
        for value in values:
            if value.strip()[:1] in ("{", "["):  # a form field holding JSON (Zoho does)
                try:
                    yield from _walk(json.loads(value), key, 0, [0])
                    continue
                except (ValueError, RecursionError):
                    pass
            yield key, value


def _walk(node: object, key: str, depth: int, seen: list[int]) -> Iterator[tuple[str, str]]:
    if depth > MAX_DEPTH or seen[0] >= MAX_FIELDS:
        return
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _walk(v, str(k), depth + 1, seen)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key, depth + 1, seen)
    elif isinstance(node, str | int) and not isinstance(node, bool):
        seen[0] += 1
        yield key, str(node)
