"""SurgiPlan trajectory simulator plug-in (entry point ``surgiplan.simulators: trajectory``)."""

__version__ = "1.0.0"
