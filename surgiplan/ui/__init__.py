"""The desktop app (PySide6 + VTK): the only package besides surgiplan.render allowed Qt."""
