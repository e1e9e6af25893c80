from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "cartrial.apps.exports"
    label = "exports"
    verbose_name = "Exports: ODM, Define-XML, Dataset-JSON (SDTM), USDM, FHIR and tables, as audited jobs"
