from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "cartrial.apps.calendars"
    label = "calendars"
    verbose_name = "Calendars: the pathway's dates per center and per role, month and week views, iCalendar feeds"
