from django.apps import AppConfig


class ToxicityConfig(AppConfig):
    name = "cartrial.apps.toxicity"
    label = "toxicity"
    verbose_name = "Toxicity: daily CRS/ICANS assessments, episodes and ICAHT after the infusion"
