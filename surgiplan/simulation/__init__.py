"""The plug-in simulator contract (Qt-free): specs, inputs, context, results, uncertainty,
discovery through the ``surgiplan.simulators`` entry points, and the runner.

See docs/writing-a-simulator.md for a complete example plug-in.
"""

from surgiplan.simulation.context import SimulationContext, StructureInfo
from surgiplan.simulation.discovery import GROUP, PluginEntry, discover, load_simulator
from surgiplan.simulation.inputs import (
    AblationInput,
    ImplantInput,
    ResectionInput,
    TrajectoryInput,
)
from surgiplan.simulation.path_search import PathCandidate, PathSearchRequest, PathSearchResult
from surgiplan.simulation.result import (
    Concern,
    DisplayGeometry,
    DisplayLine,
    DisplayMesh,
    DisplayPoint,
    DisplayScalars,
    IntervalKind,
    Level,
    Metric,
    RunProvenance,
    SimulationResult,
    Status,
    StructureLevel,
    level_for,
    level_for_probability,
    validate_result,
    worst_level,
)
from surgiplan.simulation.runner import SimulationJob, run_simulation, submit
from surgiplan.simulation.spec import (
    API_VERSION,
    Kind,
    Output,
    Parameter,
    ParamType,
    SimulatorSpec,
    validate_parameters,
)
from surgiplan.simulation.uncertainty import ErrorProfile, UncertaintyModel

__all__ = [
    "API_VERSION",
    "GROUP",
    "AblationInput",
    "Concern",
    "DisplayGeometry",
    "DisplayLine",
    "DisplayMesh",
    "DisplayPoint",
    "DisplayScalars",
    "ErrorProfile",
    "ImplantInput",
    "IntervalKind",
    "Kind",
    "Level",
    "Metric",
    "Output",
    "ParamType",
    "Parameter",
    "PathCandidate",
    "PathSearchRequest",
    "PathSearchResult",
    "PluginEntry",
    "ResectionInput",
    "RunProvenance",
    "SimulationContext",
    "SimulationJob",
    "SimulationResult",
    "SimulatorSpec",
    "Status",
    "StructureInfo",
    "StructureLevel",
    "TrajectoryInput",
    "UncertaintyModel",
    "discover",
    "level_for",
    "level_for_probability",
    "load_simulator",
    "run_simulation",
    "submit",
    "validate_parameters",
    "validate_result",
    "worst_level",
]
