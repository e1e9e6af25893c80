from django.apps import AppConfig


class SimulationConfig(AppConfig):
    name = "cartrial.apps.simulation"
    label = "simulation"
    verbose_name = "Simulation: how many patients the trial network can treat, greedy versus optimised planning"

    def ready(self) -> None:
        # Long runs as a background job (the jobs app sits below: it never imports this one).
        from cartrial.apps.simulation import jobs

        jobs.register()
