"""Deliberately misbehaving simulator plug-ins for the tests (never installed for users)."""

from surgiplan.simulation import Kind, Output, SimulatorSpec


def spec(sim_id: str, **extra) -> SimulatorSpec:
    return SimulatorSpec(id=sim_id, title=f"test plug-in {sim_id}", version="0.1",
                         kind=Kind.TRAJECTORY,
                         outputs=(Output(key="nothing", title="Nothing"),), **extra)
