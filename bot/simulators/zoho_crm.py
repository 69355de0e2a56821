"""Zoho CRM simulator on 127.0.0.1: bulk write job polls, result zip downloads, the org call."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any

from bot.simulators import HttpReply, HttpRequest, ScriptedJobs, VendorServer
from bot.simulators.zoho import ZohoSimulator

_JOB_PATH = re.compile(r"^/crm/bulk/v8/write/(?P<job>[^/]+)/?$")
_ZIP_PATH = re.compile(r"^/download/(?P<name>[A-Za-z0-9._-]+)\.zip$")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
ORG_ID = "70831234"


def _error(status: int, code: str, message: str) -> HttpReply:
    """CRM's error envelope (docs/vendors.md#crm-errors-and-limits)."""
    body = {"status": "error", "code": code, "message": message, "details": {}}
    return HttpReply.of_json(body, status=status)


class ZohoCrmSimulator(VendorServer):
    """Zoho CRM's bulk write poll (`/crm/bulk/v8/write/{job}`), `/crm/v8/org`, and result zips
    under `/download/{name}.zip` on one local origin. Point `ZOHO_CRM_API_URL` at `url`; that
    override is what lets the bot fetch download links on this origin.

    With `zoho`, only access tokens that simulator minted (and has not revoked) are accepted,
    so both simulators share one OAuth story; without it, any `Zoho-oauthtoken sim-…` token.
    A job answers its script one step per poll and repeats the last; refused polls don't count.
    """

    def __init__(self, zoho: ZohoSimulator | None = None, org_id: str = ORG_ID) -> None:
        self.zoho = zoho
        self.org_id = org_id
        self.downloads: list[tuple[str, bool]] = []  # (zip name, came with Authorization)
        self._jobs: ScriptedJobs[str] = ScriptedJobs("a bulk write job")
        self._zips: dict[str, bytes] = {}
        super().__init__()

    # ----- configuration -----

    def add_job(self, job: str, steps: list[dict[str, Any]]) -> None:
        """Script job `job`: poll n returns steps[n] (the last one forever) as the job document."""
        with self._lock:
            self._jobs.add(job, steps)

    def polls(self, job: str) -> int:
        """How many polls of `job` got a job answer."""
        with self._lock:
            return self._jobs.polls(job)

    def add_zip(
        self, name: str, csv_text: str, module: str = "Contacts", file_name: str = "bulkwrite"
    ) -> str:
        """Serve a zip holding `<module>-<file_name>.csv` at `/download/<name>.zip`; its URL."""
        if not _NAME.fullmatch(name):
            raise ValueError("zip names are letters, digits, '.', '_' and '-'")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{module}-{file_name}.csv", csv_text)
        with self._lock:
            self._zips[name] = buf.getvalue()
        return self.download_url(name)

    def download_url(self, name: str) -> str:
        return f"{self.root}/download/{name}.zip"

    def _content_type(self, body: bytes) -> str | None:
        """`fail_next` here types a body as JSON when it looks like JSON, else plain text;
        an empty body gets no Content-Type."""
        if not body:
            return None
        return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "text/plain"

    # ----- HTTP -----

    def serve(self, request: HttpRequest) -> HttpReply:
        if request.method != "GET":
            return _error(405, "METHOD_NOT_ALLOWED", "only GET is simulated")
        if match := _ZIP_PATH.match(request.path):
            return self._download(match["name"], request)
        if request.path.rstrip("/") == "/crm/v8/org":
            return self._refused(request) or self._org()
        if match := _JOB_PATH.match(request.path):
            return self._refused(request) or self._poll(match["job"])
        return HttpReply.of_text(f"no simulator route for {request.method} {request.path}", 404)

    # ----- handlers (callers hold self._lock) -----

    def _refused(self, request: HttpRequest) -> HttpReply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Zoho-oauthtoken" and self._token_ok(token):
            return None
        return _error(401, "INVALID_TOKEN", "invalid oauth token")

    def _token_ok(self, token: str) -> bool:
        if self.zoho is None:
            return token.startswith("sim-")
        # ZohoSimulator has no public accessor for its minted tokens; read them under its lock.
        return self.zoho.token_valid(token)

    def _org(self) -> HttpReply:
        org = {"id": self.org_id, "company_name": "Demo CRM Org", "zgid": "70831235"}
        return HttpReply.of_json({"org": [org]})

    def _poll(self, job: str) -> HttpReply:
        step = self._jobs.poll(job)
        if step is None:
            return _error(400, "RESOURCE_NOT_FOUND", "the bulk write job does not exist")
        return HttpReply.of_json({"id": job, **step})

    def _download(self, name: str, request: HttpRequest) -> HttpReply:
        self.downloads.append((name, "authorization" in request.headers))
        body = self._zips.get(name)
        # what Zoho answers for an expired link (docs/vendors.md#crm-errors-and-limits)
        if body is None:
            return HttpReply(403, b"", {"x-info": "Link not valid"})
        headers = {"Content-Type": "application/octet-stream"}
        return HttpReply(200, body, headers)


# ----- script builders: each returns the job documents for add_job() -----


def _resource(status: str, counts: dict[str, int] | None, module: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "status": status,
        "code": status,
        "type": "data",
        "module": {"api_name": module, "id": "6120045000000002179"},
        "file_id": "6120045000001938001",
    }
    if counts is not None:
        res["file"] = {"status": status, "name": "bulkwrite.csv", **counts}
    return res


def _job(job: str, status: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": status,
        "id": job,
        "operation": "upsert",
        "created_time": "2025-03-14T09:12:03+01:00",
        "created_by": {"id": "6120045000000331001", "name": "Demo User"},
        "character_encoding": "UTF-8",
        "ignore_empty": False,
        "resource": [resource],
    }


def steps_with_skips(
    job: str,
    download_url: str,
    *,
    added: int = 310,
    updated: int = 52,
    skipped: int = 7,
    module: str = "Contacts",
) -> list[dict[str, Any]]:
    """ADDED → IN PROGRESS → COMPLETED with skipped rows and the result link (→ partial)."""
    total = added + updated + skipped
    counts = {
        "added_count": added,
        "updated_count": updated,
        "skipped_count": skipped,
        "total_count": total,
    }
    done = _job(job, "COMPLETED", _resource("COMPLETED", counts, module))
    done["result"] = {"download_url": download_url}
    return [
        _job(job, "ADDED", _resource("ADDED", None, module)),
        _job(job, "IN PROGRESS", _resource("IN PROGRESS", None, module)),
        done,
    ]


def steps_success(
    job: str, download_url: str, *, added: int = 369, module: str = "Contacts"
) -> list[dict[str, Any]]:
    """ADDED → IN PROGRESS → COMPLETED with every row added (→ succeeded)."""
    return steps_with_skips(job, download_url, added=added, updated=0, skipped=0, module=module)


def sample_result_csv(added: int = 310, updated: int = 52, skipped: int = 7) -> str:
    """A result CSV as Zoho writes it (docs/vendors.md#crm-result-file): three mapped columns, then
    ID, STATUS, ERRORS. Every third skipped row is a duplicate email, the others lack Last_Name."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["First_Name", "Last_Name", "Email", "ID", "STATUS", "ERRORS"])
    record = 6120045000002000000
    for i in range(added + updated):
        status = "added" if i < added else "updated"
        writer.writerow(
            [f"First{i}", f"Last{i}", f"person{i}@example.test", record + i, status, ""]
        )
    for i in range(skipped):
        if i % 3 == 2:
            writer.writerow(
                [f"Dup{i}", f"Last{i}", "taken@example.test", "", "skipped", "DUPLICATE_DATA-Email"]
            )
        else:
            writer.writerow(
                [
                    f"NoLast{i}",
                    "",
                    f"nolast{i}@example.test",
                    "",
                    "skipped",
                    "MANDATORY_NOT_FOUND-Last_Name",
                ]
            )
    return buf.getvalue()
