"""Plans as documents (Qt-free): candidate plans with their simulator results, stored in the
case bundle with an audit log, compared side by side, exchanged with 3D Slicer, STL and DICOM
SEG. See ``model`` (Plan, Intervention), ``planset`` (PlanSet: edits, undo, events), ``store``
(bundle entries, schema versions), ``audit``, ``compare`` (compare_plans -> Comparison),
``scoring`` (score_plan), ``slicer_markups``, ``exports`` and ``demo``.
"""

from surgiplan.plans.compare import Comparison, compare_plans, compare_stored
from surgiplan.plans.model import Intervention, Plan, PlanStatus
from surgiplan.plans.planset import PlanSet
from surgiplan.plans.scoring import score_plan
from surgiplan.plans.store import plan_set_of_twin, read_plans, store_in_twin, write_plans

__all__ = ["Comparison", "Intervention", "Plan", "PlanSet", "PlanStatus", "compare_plans",
           "compare_stored", "plan_set_of_twin", "read_plans", "score_plan",
           "store_in_twin", "write_plans"]
