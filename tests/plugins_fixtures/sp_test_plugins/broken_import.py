"""A plug-in module that fails on import."""

raise ImportError("deliberately broken test plug-in module")
