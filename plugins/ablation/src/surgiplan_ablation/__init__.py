"""SurgiPlan ablation simulator plug-in (entry point ``surgiplan.simulators: ablation``)."""

__version__ = "1.0.0"
