"""The exports page: request an export (format, center, subject, since) as a background job, follow
its progress, download the file with its SHA-256 — one's own exports only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from cartrial.apps import text
from cartrial.apps.access import actor_somewhere, centers_for, require_somewhere
from cartrial.apps.exports.request import ExportFormat
from cartrial.apps.exports.selectors import EXPORT_KIND, export_file, exports_of
from cartrial.apps.jobs import services
from cartrial.apps.jobs.presenters import job_view
from cartrial.domain.errors import AccessDenied, DomainError, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.text import N_

LIST_SIZE = 100

# What each format is, for the page's choice (translatable).
FORMAT_LABELS: dict[ExportFormat, str] = {
    ExportFormat.ODM: N_("CDISC ODM 1.3.2: metadata and clinical data with audit records and signatures"),
    ExportFormat.DEFINE: N_("Define-XML 2.1: the SDTM datasets' metadata"),
    ExportFormat.DATASETJSON: N_("SDTM datasets as Dataset-JSON v1.1 (ZIP)"),
    ExportFormat.FHIR: N_("HL7 FHIR R4 Bundle"),
    ExportFormat.USDM: N_("CDISC USDM v4: the protocol"),
    ExportFormat.CSV: N_("Tables: CSV and Parquet per form, with the data dictionary (ZIP)"),
}


@login_required
@require_http_methods(["GET", "POST"])
def export_list(request: HttpRequest) -> HttpResponse:
    scope = require_somewhere(request.user, Action.EXPORT_DATA, "exports")
    error, item = "", ""
    if request.method == "POST":
        parameters = {
            "format": request.POST.get("format", ""),
            "centers": [c for c in [request.POST.get("center", "")] if c],
            "subject": request.POST.get("subject", "").strip() or None,
            "since": request.POST.get("since", "").strip() or None,
        }
        try:
            actor = actor_somewhere(request.user, Action.EXPORT_DATA, "exports")
            services.job_enqueue(actor=actor, kind=EXPORT_KIND, parameters=parameters)
        except AccessDenied:
            raise
        except (NotFound, DomainError) as refusal:
            error, item = text.error_text(refusal), refusal.item or ""
        else:
            return redirect("exports:export_list")
    allowed = centers_for(scope, Action.EXPORT_DATA)
    return render(
        request,
        "exports/list.html",
        {
            "formats": [(f.value, FORMAT_LABELS[f]) for f in ExportFormat],
            "centers": sorted(scope.center_codes[c] for c in allowed),
            "rows": [job_view(j) for j in exports_of(scope).select_related("requested_by")[:LIST_SIZE]],
            "error": error,
            "error_item": item,
            "posted": request.POST if request.method == "POST" else {},
        },
    )


@login_required
@require_GET
def export_download(request: HttpRequest, job_id: int) -> FileResponse:
    scope = require_somewhere(request.user, Action.EXPORT_DATA, "exports")
    path, name, sha256 = export_file(scope, job_id)
    response = FileResponse(path.open("rb"), as_attachment=True, filename=name)
    response["X-Content-SHA256"] = sha256
    return response
