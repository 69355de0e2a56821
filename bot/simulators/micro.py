"""Micro Prism simulator on 127.0.0.1: API-key auth and async import-job polls."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from bot.simulators import HttpReply, HttpRequest, ScriptedJobs, VendorServer

_JOB_PATH = re.compile(r"^/v2/prism/(?P<team>[^/]+)/imports/(?P<job>[^/]+)/?$")
# Micro keeps async import jobs for 7 days (docs/vendors.md#micro-import-states)
_RETENTION = 7 * 86400


class MicroSimulator(VendorServer):
    """Micro's `GET /v2/prism/{teamId}/imports/{jobId}` on one local origin.

    Point `MICRO_BASE_URL` at `url`. Requests need `x-api-key: api_key` and the team
    `team_id`. A job answers its script one step per poll and repeats the last step;
    refused polls (401, 403, scripted failures) don't advance it.
    """

    def __init__(
        self,
        api_key: str = "sim-micro-key",
        team_id: str = "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64",
    ) -> None:
        self.api_key = api_key
        self.team_id = team_id
        self._jobs: ScriptedJobs[str] = ScriptedJobs("a job")
        super().__init__()

    # ----- configuration -----

    def add_job(self, job_id: str, steps: list[dict[str, Any]]) -> None:
        """Script a job: poll n returns steps[n] (the last one forever) as the job document."""
        with self._lock:
            self._jobs.add(job_id, steps)

    def polls(self, job_id: str) -> int:
        """How many polls of `job_id` got a job answer (refused ones not counted)."""
        with self._lock:
            return self._jobs.polls(job_id)

    # ----- HTTP -----

    def serve(self, request: HttpRequest) -> HttpReply:
        match = _JOB_PATH.match(request.path)
        if request.method == "GET" and match:
            return self._authorized(request, match["team"]) or self._poll(match["job"])
        return HttpReply.of_json({"message": f"No route for {request.method} {request.path}"}, 404)

    # ----- handlers (callers hold self._lock) -----

    def _authorized(self, request: HttpRequest, team: str) -> HttpReply | None:
        key = request.headers.get("x-api-key")
        if not key:
            return HttpReply.of_json({"message": "Missing API key"}, status=401)
        if key != self.api_key:
            return HttpReply.of_json({"message": "Invalid API key"}, status=403)
        if team.lower() != self.team_id.lower():
            return HttpReply.of_json({"message": "API key has no access to this team"}, 403)
        return None

    def _poll(self, job_id: str) -> HttpReply:
        step = self._jobs.poll(job_id)
        if step is None:
            return HttpReply.of_json({"message": f"Import job {job_id} not found"}, status=404)
        return HttpReply.of_json(step)


# ----- script builders: each returns the job documents for add_job() -----


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _stamps(now: float | None) -> dict[str, str]:
    start = time.time() if now is None else now
    return {"created_at": _iso(start), "expires_at": _iso(start + _RETENTION)}


def _processing(
    job_id: str, total: int, processed: int, failed: int, now: float | None
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "status": "processing",
        "total": total,
        "processed": processed,
        "succeeded": processed - failed,
        "failed": failed,
        **_stamps(now),
    }


def steps_partial(
    job_id: str, *, polls_processing: int = 1, now: float | None = None
) -> list[dict[str, Any]]:
    """Processing (1,850 of 5,000), then complete with 2 of 3 rows OK (normalizes to partial)."""
    results = [
        {"id": "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64", "created": True, "existing": False},
        {"id": "a17c4d92-8e3b-4f65-b0d2-9c6e1f3a7b58", "created": False, "existing": True},
        {
            "id": None,
            "created": False,
            "existing": False,
            "error": {"code": "invalid_email", "message": "email is not a valid address"},
        },
    ]
    complete = {
        "job_id": job_id,
        "status": "complete",
        "total": 3,
        "processed": 3,
        "succeeded": 2,
        "failed": 1,
        **_stamps(now),
        "updated_at": _stamps(now)["created_at"],
        "results": results,
    }
    running = [_processing(job_id, 5000, 1850, 7, now) for _ in range(polls_processing)]
    return [*running, complete]


def steps_failed(
    job_id: str,
    error_code: str = "invalid_payload",
    error_message: str = "The import payload could not be parsed",
    *,
    polls_processing: int = 1,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Processing, then a job-level `failed` with `error{code, message}` (normalizes to failed)."""
    failed = {
        "job_id": job_id,
        "status": "failed",
        "total": 5000,
        "processed": 0,
        "error": {"code": error_code, "message": error_message},
        **_stamps(now),
    }
    running = [_processing(job_id, 5000, 0, 0, now) for _ in range(polls_processing)]
    return [*running, failed]
