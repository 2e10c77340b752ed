"""The PACS dock: server settings with 'Test connection', a query form (patient name/ID, date
range, modality, accession), results as patient -> study -> series, and retrieval of a series
(C-GET, C-MOVE or WADO-RS) in a worker with progress and cancel, into the local database and
then the viewer. Also 'Send results to PACS…' (SEG and report PDF into the original study,
after an explicit confirmation that the objects carry the patient's identity).

Everything network-related runs in the window's job runner (never on the GUI thread)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgiplan.net.settings import PacsSettings, ServerSettings, load_settings, save_settings
from surgiplan.ui.data.db_browser import DatabaseBrowser
from surgiplan.ui.widgets.docks import add_dock

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

UID_ROLE = Qt.ItemDataRole.UserRole + 1
METHODS = {"C-GET": "get", "C-MOVE": "move", "WADO-RS": "wado"}


class ServerDialog(QDialog):
    """Add or edit one server (the password is kept only in the owner-only settings file)."""

    def __init__(self, parent: QWidget | None, server: ServerSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS server")
        s = server or ServerSettings(name="PACS")
        self.name, self.ae, self.host = QLineEdit(s.name), QLineEdit(s.ae_title), QLineEdit(s.host)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(s.port)
        self.tls = QCheckBox("DICOM over TLS")
        self.tls.setChecked(s.tls)
        self.url, self.user = QLineEdit(s.dicomweb_url), QLineEdit(s.dicomweb_user)
        self.password = QLineEdit(s.dicomweb_password.get_secret_value())
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        form = QFormLayout(self)
        for label, widget in (("Name", self.name), ("AE title", self.ae), ("Host", self.host),
                              ("Port", self.port), ("", self.tls), ("DICOMweb URL", self.url),
                              ("User", self.user), ("Password", self.password)):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def server(self) -> ServerSettings:
        from pydantic import SecretStr

        return ServerSettings(name=self.name.text().strip(), ae_title=self.ae.text(),
                              host=self.host.text().strip(), port=self.port.value(),
                              tls=self.tls.isChecked(), dicomweb_url=self.url.text(),
                              dicomweb_user=self.user.text().strip(),
                              dicomweb_password=SecretStr(self.password.text()))


class PacsPanel(QWidget):
    """Query / retrieve form and results (see the module docstring)."""

    def __init__(self, window: MainWindow, browser: DatabaseBrowser) -> None:
        super().__init__(window)
        self.window_, self.browser = window, browser
        self.server_box = QComboBox()
        self.patient_name, self.patient_id = QLineEdit(), QLineEdit()
        self.modality, self.accession = QLineEdit(), QLineEdit()
        self.use_dates = QCheckBox("Study date from / to")
        self.date_from, self.date_to = QDateEdit(QDate.currentDate().addYears(-1)), \
            QDateEdit(QDate.currentDate())
        for d in (self.date_from, self.date_to):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.results = QTreeWidget()
        self.results.setHeaderLabels(["Patient / study / series", "Files", "Date"])
        self.results.itemDoubleClicked.connect(lambda *_: self.retrieve_selected())
        self._build_layout()
        self.reload_servers()

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.server_box, 1)
        for title, slot in (("Edit…", self.edit_server), ("Test connection", self.test)):
            b = QPushButton(title)
            b.clicked.connect(lambda _=False, s=slot: s())
            top.addWidget(b)
        form = QFormLayout()
        form.addRow("Patient name", self.patient_name)
        form.addRow("Patient ID", self.patient_id)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(self.date_to)
        form.addRow(self.use_dates, dates)
        form.addRow("Modality", self.modality)
        form.addRow("Accession", self.accession)
        actions = QHBoxLayout()
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(lambda _=False: self.search())
        self.retrieve_button = QPushButton("Retrieve series")
        self.retrieve_button.clicked.connect(lambda _=False: self.retrieve_selected())
        for w in (self.search_button, self.method, self.retrieve_button):
            actions.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addLayout(actions)
        layout.addWidget(self.results, 1)

    # ------------------------------------------------------------------ settings
    def settings(self) -> PacsSettings:
        return load_settings()

    def reload_servers(self) -> None:
        try:
            names = list(self.settings().servers)
        except Exception:
            names = []
        self.server_box.clear()
        self.server_box.addItems(names or ["(no server: Edit… to add one)"])

    def server(self) -> tuple[PacsSettings, ServerSettings]:
        settings = self.settings()
        return settings, settings.server(self.server_box.currentText()
                                         if self.server_box.currentText() in settings.servers
                                         else None)

    def edit_server(self) -> None:
        try:
            settings = self.settings()
        except Exception as exc:
            self.window_.load_failed.emit(exc)
            return
        dialog = ServerDialog(self, settings.servers.get(self.server_box.currentText()))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            server = dialog.server()
        except ValueError as exc:
            QMessageBox.warning(self, "PACS server", str(exc).splitlines()[-1])
            return
        settings.servers[server.name] = server
        settings.default_server = settings.default_server or server.name
        save_settings(settings)
        self.reload_servers()
        self.server_box.setCurrentText(server.name)

    # ------------------------------------------------------------------ network jobs
    def _submit(self, name: str, fn, on_done) -> None:
        self.window_.runner.submit(name, fn, on_done=on_done,
                                   on_error=self.window_.load_failed.emit)

    def test(self) -> None:
        from surgiplan.net import dicomweb, dimse

        def job(progress=None, cancel=None):
            settings, server = self.server()
            if server.has_dimse:
                dimse.echo(settings, server)
                return f"{server.name}: C-ECHO ok"
            dicomweb.echo(server)
            return f"{server.name}: QIDO-RS ok"

        self._submit("Testing the PACS connection", job,
                     lambda text: self.window_.statusBar().showMessage(text, 8000))

    def query(self):
        from surgiplan.net.query import Query

        dates = ("", "")
        if self.use_dates.isChecked():
            dates = (self.date_from.date().toString("yyyyMMdd"),
                     self.date_to.date().toString("yyyyMMdd"))
        return Query(self.patient_name.text().strip(), self.patient_id.text().strip(), *dates,
                     self.modality.text().strip().upper(), self.accession.text().strip())

    def search(self) -> None:
        from surgiplan.net.query import search

        query = self.query()

        def job(progress=None, cancel=None):
            settings, server = self.server()
            return search(settings, server, query, cancel=cancel)

        self._submit("Searching the PACS", job, self.show_results)

    def show_results(self, tree: list[dict]) -> None:
        self.results.clear()
        for patient in tree:
            p = QTreeWidgetItem([f"{patient['patient_name'] or '(no name)'} "
                                 f"[{patient['patient_id']}]"])
            self.results.addTopLevelItem(p)
            for study in patient["studies"]:
                s = QTreeWidgetItem([study["description"] or study["accession"]
                                     or study["study_uid"], "", study["study_date"]])
                p.addChild(s)
                for se in study["series"]:
                    n = "" if se["instances"] is None else str(se["instances"])
                    item = QTreeWidgetItem([f"{se['modality']} {se['description']}".strip(), n])
                    item.setData(0, UID_ROLE, (study["study_uid"], se["series_uid"]))
                    s.addChild(item)
        self.results.expandAll()
        self.results.resizeColumnToContents(0)
        if not tree:
            self.window_.statusBar().showMessage("No study matches", 6000)

    def retrieve_selected(self) -> None:
        """Retrieve the selected series in a worker (progress and cancel in the status bar),
        then show it in the database browser and load it."""
        from surgiplan.db.database import LocalDatabase
        from surgiplan.net.retrieve import retrieve_series

        item = self.results.currentItem()
        uids = item.data(0, UID_ROLE) if item is not None else None
        if not uids:
            self.window_.statusBar().showMessage("Select a series to retrieve", 6000)
            return
        method = METHODS[self.method.currentText()]

        def job(progress=None, cancel=None):
            settings, server = self.server()
            with LocalDatabase() as db:
                return retrieve_series(settings, server, db, *uids, method=method,
                                       progress=progress, cancel=cancel)

        def done(_summary) -> None:
            self.browser.refresh()
            self.browser.load_series(uids[1])

        self._submit(f"Retrieving series ({self.method.currentText()})", job, done)

    # ------------------------------------------------------------------ send back
    def send_results(self) -> None:
        """SEG (and optionally a report PDF) of the saved case into its original study."""
        from surgiplan.net.send import send_results

        case = self.window_.case_path
        if case is None:
            QMessageBox.information(self, "Send to PACS", "Save the case first (it must have "
                                    "been built keeping the patient identifiers).")
            return
        answer = QMessageBox.question(
            self, "Send to PACS", "The DICOM SEG (and report) will carry the patient's name, "
            "ID and the original UIDs so the PACS files them in the original study. This is "
            "recorded in identifiers.log. Send?")
        if answer != QMessageBox.StandardButton.Yes:
            return
        pdf, _ = QFileDialog.getOpenFileName(self, "Report PDF to send as well (optional)",
                                             "", "PDF (*.pdf)")

        def job(progress=None, cancel=None):
            settings, server = self.server()
            return send_results(settings, server, Path(case), seg=True,
                                pdf=Path(pdf) if pdf else None, include_identifiers=True,
                                progress=progress)

        self._submit("Sending results to the PACS", job, lambda sent: self.window_.statusBar()
                     .showMessage(f"{len(sent)} object(s) stored in the PACS", 8000))


def install_pacs(window: MainWindow) -> PacsPanel:
    """The PACS and DICOM database docks (hidden until used) and the PACS menu."""
    browser = DatabaseBrowser(window)
    panel = PacsPanel(window, browser)
    docks = []
    for title, widget in (("PACS", panel), ("DICOM database", browser)):
        dock = add_dock(window, title, widget, name=f"dock_{title.split()[-1].lower()}",
                        area=Qt.DockWidgetArea.RightDockWidgetArea)
        dock.hide()
        docks.append(dock)
    window.tabifyDockWidget(docks[0], docks[1])
    menu = window.menuBar().addMenu("P&ACS")
    for title, slot in (("Query / retrieve…", partial(_show, docks[0])),
                        ("Local DICOM database…", partial(_show, docks[1], browser.refresh)),
                        ("Send results to PACS…", panel.send_results),
                        ("Server settings…", panel.edit_server)):
        action = menu.addAction(title)
        action.triggered.connect(lambda _=False, s=slot: s())
    window.pacs_panel, window.db_browser = panel, browser
    window.pacs_dock, window.db_dock = docks
    return panel


def _show(dock: QDockWidget, before=None) -> None:
    if before is not None:
        before()
    dock.show()
    dock.raise_()
