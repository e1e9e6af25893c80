from django.apps import AppConfig


class PlanningConfig(AppConfig):
    name = "cartrial.apps.planning"
    label = "planning"
    verbose_name = "Planning: capacities and booking of the vein-to-vein calendar"

    def ready(self) -> None:
        # The casebook shows booked dates as visit targets without importing this app (layers).
        from cartrial.apps.casebook.selectors import planned_dates_register
        from cartrial.apps.planning.selectors import booked_visit_dates

        planned_dates_register(booked_visit_dates)

        # The planner as a background job (the jobs app sits below: it never imports this one).
        from cartrial.apps.planning import jobs

        jobs.register()
