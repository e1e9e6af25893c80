"""The protocol's figures the network simulation uses (issue 11): lymphodepletion and APH day."""

from __future__ import annotations

from cartrial.domain.simulation import SimulationParameters, with_protocol
from cartrial.protocols import Protocol


def simulation_defaults(protocol: Protocol) -> SimulationParameters:
    """The simulation's defaults with the protocol's lymphodepletion window (its length and gap to D0)
    and the apheresis visit's day after inclusion."""
    try:
        apheresis_day: int | None = protocol.visit("APH").day
    except KeyError:
        apheresis_day = None
    return with_protocol(
        SimulationParameters(),
        lymphodepletion_window_days=protocol.pathway_rules.lymphodepletion_window_days,
        apheresis_day=apheresis_day,
    )
