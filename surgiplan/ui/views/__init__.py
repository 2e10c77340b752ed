"""The linked views: slice and 3D views, their planes, overlays, windowing, the probe's-eye view
and measurement tools."""
