"""The notifications page: the user's alerts (open first), filters, and acknowledgement with a note."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, require_somewhere
from cartrial.apps.alerts import selectors, services
from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.presenters import alert_view
from cartrial.apps.text import error_text
from cartrial.domain.alerts import ALERT_SPECS
from cartrial.domain.errors import AccessDenied, DomainError, NotFound
from cartrial.domain.roles import Action


def alert_acknowledge_as(request: HttpRequest, alert_id: int, note: str) -> Alert:
    """Acknowledge through the access entry point (scope: NotFound; role: AccessDenied, recorded)."""
    alert = selectors.alert_get(request.user, alert_id)
    reach = reach_subject(request.user, alert.subject.code, Action.ACKNOWLEDGE_ALERT)
    role = reach.scope.role_at(alert.center_id)
    return reach.run(
        lambda: services.alert_acknowledge(actor=reach.actor, alert=alert, role=role, note=note),
        what=Action.ACKNOWLEDGE_ALERT.value,
    )


@login_required
@require_http_methods(["GET", "POST"])
def alert_list(request: HttpRequest) -> HttpResponse:
    require_somewhere(request.user, Action.READ_ALERTS, "alerts")
    error = ""
    if request.method == "POST":
        try:
            alert_acknowledge_as(request, int(request.POST.get("alert", "0") or 0), request.POST.get("note", ""))
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            return redirect(request.get_full_path())
    status = request.GET.get("status", "open")
    status = status if status in (*selectors.STATUSES, "all") else "open"
    kind = request.GET.get("kind") or None
    kind = kind if kind in ALERT_SPECS else None
    now = clock.now()
    alerts = selectors.alerts_for(request.user, status=None if status == "all" else status, kind=kind)[:200]
    return render(
        request,
        "alerts/list.html",
        {
            "rows": [alert_view(a, now) for a in alerts],
            "status": status,
            "kind": kind or "",
            "kinds": [(k.value, spec.label) for k, spec in ALERT_SPECS.items()],
            "error": error,
        },
    )
