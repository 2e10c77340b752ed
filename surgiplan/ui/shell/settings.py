"""Where the app keeps its settings (recent files, ...): an INI file in the user config folder.

An explicit path (``platformdirs.user_config_dir``, which honours ``XDG_CONFIG_HOME``) rather than
Qt's native location, so the tests' isolated XDG folders also isolate the settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

SETTINGS_NAME = "surgiplan.ini"


def settings_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("surgiplan", appauthor=False)) / SETTINGS_NAME


def app_settings() -> QSettings:
    """The app's settings file (created on first write)."""
    return QSettings(str(settings_path()), QSettings.Format.IniFormat)
