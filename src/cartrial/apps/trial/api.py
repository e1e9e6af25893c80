"""API: the centers in the user's scope."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from cartrial.apps.access import scope_for
from cartrial.apps.trial.selectors import center_list

router = Router(tags=["centers"])


class CenterOut(Schema):
    code: str
    name: str
    city: str
    country: str
    time_zone: str
    language: str
    kind: str
    my_role: str


@router.get("", response=list[CenterOut], summary="Centers where I have a role")
def centers(request: HttpRequest) -> list[CenterOut]:
    scope = scope_for(request.user)
    return [
        CenterOut(
            code=c.code,
            name=c.name,
            city=c.city,
            country=c.country,
            time_zone=c.time_zone,
            language=c.language,
            kind=c.kind,
            my_role=scope.roles_by_center[c.pk].value,
        )
        for c in center_list(center_ids=scope.center_ids)
    ]
