from django.apps import AppConfig


class SimulationConfig(AppConfig):
    name = "cartrial.apps.simulation"
    label = "simulation"
    verbose_name = "Simulation: how many patients the trial network can treat, greedy versus optimised planning"
