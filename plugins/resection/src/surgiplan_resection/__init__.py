"""SurgiPlan resection simulator plug-in (entry point ``surgiplan.simulators: resection``).

Public API: the cutting surfaces (:mod:`.cuts`), the prepared organ for live re-scoring
(:mod:`.scoring`), the simulator (:mod:`.simulator`) and the specimen/remnant structures
(:mod:`.regions`).
"""

__version__ = "1.0.0"
