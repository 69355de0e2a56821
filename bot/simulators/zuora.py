"""Zuora simulator on 127.0.0.1: OAuth client credentials, AQuA job polls and result files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.simulators import HttpReply, HttpRequest, ScriptedJobs, VendorServer

_JOB_PATH = re.compile(r"^/v1/batch-query/jobs/(?P<job>[^/]+)/?$")
_FILE_PATH = re.compile(r"^/v1/(?P<kind>files|file)/(?P<file>[^/]+)/?$")
FILE_IDS = ("5f0c2a9e41d7b3c8e6a1f4d290b7c3f0", "5f0c2a9e41d7b3c8e6a1f4d290b7c3f1")


@dataclass(frozen=True)
class _File:
    content: bytes
    content_type: str
    singular_only: bool


class ZuoraSimulator(VendorServer):
    """Zuora's `/oauth/token`, `/v1/batch-query/jobs/{id}` and `/v1/files/{id}` on one origin.

    Point `ZUORA_BASE_URL` at `url`. Minted tokens stay valid until `revoke_tokens()`. A job
    answers its script one step per poll and repeats the last step; refused polls don't count.
    """

    def __init__(
        self, client_id: str = "sim-zuora-client", client_secret: str = "sim-zuora-secret"
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_requests = 0  # tokens minted so far
        self._valid_tokens: set[str] = set()
        self._jobs: ScriptedJobs[str] = ScriptedJobs("a job")
        self._files: dict[str, _File] = {}
        super().__init__()

    # ----- configuration -----

    def add_job(self, job_id: str, steps: list[dict[str, Any]]) -> None:
        """Script a job: poll n returns steps[n] (the last one forever) as the job document."""
        with self._lock:
            self._jobs.add(job_id, [{"id": job_id, **s} for s in steps])

    def polls(self, job_id: str) -> int:
        """How many polls of `job_id` got a job answer (refused ones not counted)."""
        with self._lock:
            return self._jobs.polls(job_id)

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

    # ----- HTTP -----

    def serve(self, request: HttpRequest) -> HttpReply:
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
        step = self._jobs.poll(job_id)
        if step is None:
            return HttpReply.of_json({"message": f"Job {job_id} not found"}, status=404)
        return HttpReply.of_json(step)

    def _file(self, kind: str, file_id: str) -> HttpReply:
        found = self._files.get(file_id)
        if found is None or found.singular_only != (kind == "file"):
            reasons = [{"code": "50000040", "message": f"File {file_id} not found"}]
            return HttpReply.of_json({"success": False, "reasons": reasons}, status=404)
        return HttpReply(
            200, found.content, {"Content-Type": f"{found.content_type};charset=UTF-8"}
        )


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
