"""The plan report (PDF): content, rendering of the plan's views, and export from the app or
headless (``surgiplan report``). See ``content``, ``capture``, ``pdf``, ``export`` and
``marks`` (plan and feedback marks on a window's views, shared with training mode).
"""
