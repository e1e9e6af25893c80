"""The administration pages' input: the same fields the API's bodies declare; the rules (a taken
username, a role that does not fit the center, a token's lifetime) are the services'."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.fields import DATE_WIDGET
from cartrial.apps.trial.models import Center
from cartrial.domain.access_terms import TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX
from cartrial.domain.roles import ROLE_LABELS, Role

KIND_CHOICES = [
    (Center.Kind.CLINICAL.value, _("Clinical center")),
    (Center.Kind.MANUFACTURING.value, _("Manufacturing lab")),
    (Center.Kind.SPONSOR.value, _("Sponsor")),
]
LANGUAGE_CHOICES = [("fr", "Français"), ("en", "English")]


def role_choices() -> list[tuple[str, str]]:
    """The roles, labelled in the reader's language."""
    return [(role.value, gettext(ROLE_LABELS[role])) for role in Role]


class CenterForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    city = forms.CharField(label=_("City"), max_length=100)
    country = forms.CharField(label=_("Country (ISO code)"), min_length=2, max_length=2)
    time_zone = forms.CharField(label=_("Time zone"), max_length=64, initial="Europe/Paris")
    language = forms.ChoiceField(label=_("Language"), choices=LANGUAGE_CHOICES)
    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)


class CenterCreateForm(CenterForm):
    code = forms.CharField(label=_("Code"), min_length=2, max_length=6, help_text=_("2 to 6 capital letters: BDX"))
    field_order = ["code"]


class UserForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    email = forms.EmailField(label=_("E-mail"), required=False)
    language = forms.ChoiceField(label=_("Language"), choices=[("", "—"), *LANGUAGE_CHOICES], required=False)


class UserCreateForm(UserForm):
    password = forms.CharField(label=_("Initial password"), widget=forms.PasswordInput, min_length=12, max_length=128)


class MembershipGrantForm(forms.Form):
    center = forms.CharField(label=_("Center"), max_length=8)
    role = forms.ChoiceField(label=_("Role"), choices=role_choices)


class MembershipChangeForm(forms.Form):
    center = forms.CharField(label=_("Center"), max_length=8)
    role = forms.ChoiceField(label=_("Role"), choices=role_choices)
    last_day = forms.DateField(
        label=_("Last day of access"),
        required=False,
        widget=DATE_WIDGET,
        help_text=_("Empty: no end. Ends at midnight at the center."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500)


class TokenCreateForm(forms.Form):
    label = forms.CharField(label=_("What the token is for"), max_length=100)
    days = forms.IntegerField(
        label=_("Valid for (days)"), min_value=1, max_value=TOKEN_DAYS_MAX, initial=TOKEN_DAYS_DEFAULT
    )


class AuditFilterForm(forms.Form):
    date_from = forms.DateField(label=_("From (UTC day)"), required=False, widget=DATE_WIDGET)
    date_to = forms.DateField(label=_("To (UTC day)"), required=False, widget=DATE_WIDGET)
    center = forms.CharField(label=_("Center"), max_length=8, required=False)
    actor = forms.CharField(label=_("Who (username)"), max_length=150, required=False)
    event = forms.ChoiceField(
        label=_("Event"), required=False, choices=[("", "—"), *((e.value, e.value) for e in AuditEvent)]
    )
    entity = forms.CharField(label=_("Entity"), max_length=48, required=False)
    subject = forms.CharField(label=_("Subject"), max_length=32, required=False)
    offset = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
