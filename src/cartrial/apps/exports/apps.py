from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "cartrial.apps.exports"
    label = "exports"
    verbose_name = "Exports: ODM, Define-XML, Dataset-JSON (SDTM), USDM, FHIR and tables, as audited jobs"

    def ready(self) -> None:
        # The export as a background job (the jobs app sits below: it never imports this one).
        from cartrial.apps.exports import jobs

        jobs.register()
