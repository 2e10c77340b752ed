"""A banner above the views listing the import warnings of the open scan until dismissed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget


class WarningBanner(QWidget):
    """Amber banner: every import warning (gantry tilt, filled gaps, mosaics...), one a line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("import_warnings_banner")
        self.setStyleSheet("#import_warnings_banner { background: #5a4300; }"
                           " QLabel { color: #ffe9a8; }")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel()
        self.label.setObjectName("import_warnings_text")
        self.label.setWordWrap(True)
        row.addWidget(self.label, 1)
        self.close_button = QToolButton(text="Dismiss")
        self.close_button.setObjectName("import_warnings_dismiss")
        self.close_button.clicked.connect(self.hide)
        row.addWidget(self.close_button)
        self.warnings: list[str] = []
        self.hide()

    def set_warnings(self, warnings: list[str]) -> None:
        """Show ``warnings`` (hidden when there are none)."""
        self.warnings = [str(w) for w in warnings]
        n = len(self.warnings)
        head = f"Import warning{'s' if n > 1 else ''} ({n}): "
        self.label.setText(head + "\n".join(f"• {w}" for w in self.warnings))
        self.setVisible(bool(n))
