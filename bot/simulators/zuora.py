"""Zuora simulator on 127.0.0.1: OAuth client credentials, AQuA job polls and result files."""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from bot.simulators import HttpReply, HttpRequest, LocalServer

_JOB_PATH = re.compile(r"^/v1/batch-query/jobs/(?P<job>[^/]+)/?$")
_FILE_PATH = re.compile(r"^/v1/(?P<kind>files|file)/(?P<file>[^/]+)/?$")
FILE_IDS = ("5f0c2a9e41d7b3c8e6a1f4d290b7c3f0", "5f0c2a9e41d7b3c8e6a1f4d290b7c3f1")


@dataclass(frozen=True)
class _Scripted:
    path_contains: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _File:
    content: bytes
    content_type: str
    singular_only: bool


class ZuoraSimulator(LocalServer):
    """Zuora's `/oauth/token`, `/v1/batch-query/jobs/{id}` and `/v1/files/{id}` on one origin.

    Point `ZUORA_BASE_URL` at `url`. Minted tokens stay valid until `revoke_tokens()`. A job
    answers its script one step per poll and repeats the last step; refused polls don't count.
    """

    def __init__(
        self, client_id: str = "sim-zuora-client", client_secret: str = "sim-zuora-secret"
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.token_requests = 0  # tokens minted so far
        self._valid_tokens: set[str] = set()
        self._jobs: dict[str, list[dict[str, Any]]] = {}
        self._polls: dict[str, int] = {}
        self._files: dict[str, _File] = {}
        self._scripted: list[_Scripted] = []
        super().__init__()
        self.url = self.root

    # ----- configuration -----

    def add_job(self, job_id: str, steps: list[dict[str, Any]]) -> None:
        """Script a job: poll n returns steps[n] (the last one forever) as the job document."""
        if not steps:
            raise ValueError("a job needs at least one step")
        with self._lock:
            self._jobs[job_id] = [{"id": job_id, **copy.deepcopy(s)} for s in steps]
            self._polls[job_id] = 0

    def polls(self, job_id: str) -> int:
        """How many polls of `job_id` got a job answer (refused ones not counted)."""
        with self._lock:
            return self._polls.get(job_id, 0)

    def add_file(
        self,
        file_id: str,
        content: bytes,
        content_type: str = "text/csv",
        *,
        singular_only: bool = False,
    ) -> None:
        """Serve `content` at `/v1/files/{id}`, or only at `/v1/file/{id}` when `singular_only`."""
        with self._lock:
            self._files[file_id] = _File(content, content_type, singular_only)

    def revoke_tokens(self) -> None:
        """Invalidate every token minted so far; the next call gets 401 Authentication error."""
        with self._lock:
            self._valid_tokens.clear()

    def fail_next(
        self,
        path_contains: str,
        status: int,
        body: str | bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request whose path (with query) contains `path_contains` verbatim.

        Queued replies are used in order. Without a Content-Type header one is guessed
        from the body: JSON, HTML (starts with `<`) or plain text.
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        given = dict(headers or {})
        if not any(k.lower() == "content-type" for k in given):
            given["Content-Type"] = _guess_type(raw)
        with self._lock:
            self._scripted.append(_Scripted(path_contains, status, raw, given))

    # ----- HTTP -----

    def route(self, request: HttpRequest) -> HttpReply:
        with self._lock:
            self.requests.append((request.method, request.target, dict(request.headers)))
            scripted = next((s for s in self._scripted if s.path_contains in request.target), None)
            if scripted is not None:
                self._scripted.remove(scripted)
                return HttpReply(scripted.status, scripted.body, scripted.headers)
            if request.path == "/oauth/token":
                if request.method != "POST":
                    return HttpReply.of_json({"message": "Method not allowed"}, status=405)
                return self._token(request.form())
            job = _JOB_PATH.match(request.path)
            if request.method == "GET" and job:
                return self._authorized(request) or self._poll(job["job"])
            file = _FILE_PATH.match(request.path)
            if request.method == "GET" and file:
                return self._authorized(request) or self._file(file["kind"], file["file"])
        return HttpReply.of_text(f"no simulator route for {request.method} {request.path}", 404)

    # ----- handlers (callers hold self._lock) -----

    def _token(self, form: dict[str, str]) -> HttpReply:
        if form.get("grant_type") != "client_credentials":
            return HttpReply.of_json({"error": "unsupported_grant_type"}, status=400)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return HttpReply.of_json({"error": "invalid_client"}, status=401)
        self.token_requests += 1
        token = f"sim-zuora-token-{self.token_requests}"
        self._valid_tokens.add(token)
        return HttpReply.of_json(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": 3600,
                "scope": "entity.sim user.sim",
                "jti": f"jti-{self.token_requests}",
            }
        )

    def _authorized(self, request: HttpRequest) -> HttpReply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token in self._valid_tokens:
            return None
        return HttpReply.of_json({"message": "Authentication error"}, status=401)

    def _poll(self, job_id: str) -> HttpReply:
        steps = self._jobs.get(job_id)
        if steps is None:
            return HttpReply.of_json({"message": f"Job {job_id} not found"}, status=404)
        n = self._polls[job_id]
        self._polls[job_id] = n + 1
        return HttpReply.of_json(steps[min(n, len(steps) - 1)])

    def _file(self, kind: str, file_id: str) -> HttpReply:
        found = self._files.get(file_id)
        if found is None or found.singular_only != (kind == "file"):
            reasons = [{"code": "50000040", "message": f"File {file_id} not found"}]
            return HttpReply.of_json({"success": False, "reasons": reasons}, status=404)
        return HttpReply(
            200, found.content, {"Content-Type": f"{found.content_type};charset=UTF-8"}
        )


def _guess_type(body: bytes) -> str:
    if body.lstrip().startswith(b"<"):
        return "text/html; charset=utf-8"
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


# ----- script builders: each returns the job documents for add_job() -----


def _job(job_id: str, status: str, batches: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": "syncwatch demo",
        "status": status,
        "format": "CSV",
        "encrypted": "none",
        "version": "1.1",
        "startTime": "2026-01-01 09:00:00",
        "batches": batches,
        **extra,
    }


def _batch(name: str, status: str, records: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "query": f"select Id from {name.rstrip('s')}",
        "status": status,
        "recordCount": records,
        "batchType": "zoqlexport",
        "apiVersion": "60.0",
        **extra,
    }


def steps_two_batches(
    job_id: str,
    file_ids: tuple[str, str] = FILE_IDS,
    records: tuple[int, int] = (3, 2),
) -> list[dict[str, Any]]:
    """Submitted, executing, then completed with batches Invoices and Payments, each with a file."""
    names = ("Invoices", "Payments")
    return [
        _job(job_id, "submitted", [_batch(n, "pending") for n in names]),
        _job(job_id, "executing", [_batch(names[0], "executing"), _batch(names[1], "pending")]),
        _job(
            job_id,
            "completed",
            [
                _batch(n, "completed", r, fileId=f)
                for n, r, f in zip(names, records, file_ids, strict=True)
            ],
        ),
    ]


def steps_failed(
    job_id: str,
    code: str = "90029",
    message: str = "The job exceeded the maximum processing time and was stopped.",
) -> list[dict[str, Any]]:
    """Executing, then `error` with `errorCode` and `message` (e.g. the 3-hour limit)."""
    return [
        _job(job_id, "executing", [_batch("Invoices", "executing")]),
        _job(job_id, "error", [], errorCode=code, message=message),
    ]
