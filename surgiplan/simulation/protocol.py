"""The simulator contract: what a plug-in object must provide.

A plug-in's entry point (group ``surgiplan.simulators``) names a class (instantiated with no
arguments), a zero-argument factory, or an instance. The object has

* ``spec``: a :class:`~surgiplan.simulation.spec.SimulatorSpec` (or a dict that validates as one);
* ``run(context, inputs, parameters, *, uncertainty, progress=None, cancel=None)``
  -> :class:`~surgiplan.simulation.result.SimulationResult`, where ``inputs`` is the input
  model of the spec's kind (:mod:`surgiplan.simulation.inputs`), ``parameters`` the checked
  parameter values (defaults filled in) and ``uncertainty`` an
  :class:`~surgiplan.simulation.uncertainty.UncertaintyModel`;
* optionally, the methods of each capability it declares in ``spec.capabilities`` (typed
  protocols per kind in :mod:`~surgiplan.simulation.capabilities`: ``search`` for a
  trajectory path search, ``live`` re-scores, ``handles`` to draw, ``optimise``, ``suggest``,
  ``structures`` it adds...); discovery disables a plug-in that declares one it lacks.

The runner refuses to run it on a case with no structure of a role in ``spec.required_roles``.

``run`` must not modify the context; it should call ``progress(fraction, text)`` and check
``cancel`` between steps. Raising is allowed: the runner turns it into a failed result.

What SurgiPlan guarantees around a plug-in (see :mod:`~surgiplan.simulation.runner` and
:mod:`~surgiplan.simulation.isolation`):

* a plug-in that is not bundled with SurgiPlan is imported, checked and run in a child process
  with a hard timeout (the process is killed), so a crash, a hang or ``os._exit`` costs only
  that run; it receives copies of the case (image, label layers, structures, surfaces and the
  distance maps already computed), never the user's twin;
* its result travels back bounded (64 MB) and only as SurgiPlan's own result types, numpy
  arrays and plain values (anything else is refused);
* every result is validated before it is shown: values finite or explicitly not assessable
  (:meth:`~surgiplan.simulation.result.Metric.unassessable`), intervals ordered and holding
  their value, text where text belongs, ``details`` plain JSON; otherwise the run is FAILED;
* parameters' numeric defaults and ranges lie within +-2e9 (the forms' spin boxes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from surgiplan.progress import CancelToken, ProgressCallback
    from surgiplan.simulation.context import SimulationContext
    from surgiplan.simulation.result import SimulationResult
    from surgiplan.simulation.spec import SimulatorSpec
    from surgiplan.simulation.uncertainty import UncertaintyModel


@runtime_checkable
class Simulator(Protocol):
    spec: SimulatorSpec

    def run(
        self,
        context: SimulationContext,
        inputs: Any,
        parameters: dict[str, Any],
        *,
        uncertainty: UncertaintyModel,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SimulationResult: ...
