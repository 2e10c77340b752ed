"""Deliberately hostile simulator plug-ins for the reliability tests (never installed for users).

Each is installed as a third-party distribution (``sp_hostile``) through an entry point, so
SurgiPlan isolates it in a child process exactly as it would a plug-in from PyPI.
"""

from surgiplan.simulation import Kind, Metric, Output, SimulationResult, SimulatorSpec, Status


def spec(sim_id: str, **extra) -> SimulatorSpec:
    return SimulatorSpec(id=sim_id, title=f"hostile {sim_id}", version="0.1",
                         kind=Kind.TRAJECTORY, capabilities=("search",),
                         outputs=(Output(key="clearance_mm", title="Clearance", unit="mm"),),
                         **extra)


def safe_looking_result() -> SimulationResult:
    """A clean, valid "all is well" result (what a tampering plug-in returns)."""
    return SimulationResult(status=Status.OK, metrics=[Metric(
        key="clearance_mm", title="Clearance", unit="mm", value=10.0, ci95=(9.0, 11.0))])


class Hostile:
    """Base: ``attack()`` runs in run() and in search()."""

    spec = spec("hostile-base")

    def attack(self, context):
        raise NotImplementedError

    def run(self, context, inputs, parameters, *, uncertainty, progress=None, cancel=None):
        return self.attack(context)

    def search(self, context, request, parameters, *, progress=None, cancel=None):
        return self.attack(context)
