"""The GUI: QApplication on a qasync event loop, and the main window.

`run_gui(files)` is what `mri-style [FILE ...]` calls (files, or DICOM series folders). Loads,
folder scans and saves run off the GUI thread through ui/workers.py; errors show a dialog and the
previous volume stays on screen.
torch is never imported here: panels import it only when a model is needed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
)

from mri_style_app import paths
from mri_style_app.imaging import dicom
from mri_style_app.imaging.volume import Volume, load_volume, save_volume
from mri_style_app.ui import display
from mri_style_app.ui.compare import CompareView
from mri_style_app.ui.dicom_dialogs import SeriesListDialog
from mri_style_app.ui.triplanar import TriPlanarView
from mri_style_app.ui.workers import Task, exempt_long_lived_objects, start_task

APP_NAME = "MRI Style"
ORGANISATION = "MRI Style"
MAX_RECENT = 10
# The compare view is built this long after start-up, once the window and the first file are up.
COMPARE_VIEW_DELAY_MS = 1500
OPEN_FILTER = "NIfTI / Analyze (*.nii *.nii.gz *.hdr *.img *.hdr.gz *.img.gz);;DICOM multi-frame (*.dcm);;All files (*)"
EXPORT_DESCRIPTION = ("MRI Style export", "Exported by MRI Style")


class MainWindow(QMainWindow):
    """Menus, status bar, the tri-planar viewer and compare mode; panels dock on the right."""

    volume_changed = Signal(object)  # the new primary Volume

    @staticmethod
    def _first_size() -> QSize:
        """1280 x 860, or less where the screen is smaller (a 1366 x 768 laptop)."""
        screen = QGuiApplication.primaryScreen()
        room = screen.availableGeometry().size() if screen is not None else QSize(1280, 860)
        return QSize(min(1280, room.width()), min(860, room.height() - 40))  # 40: the title bar

    def __init__(self):
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(self._first_size())
        self.close_guards: list[Callable[[], bool]] = []
        self.last_error_dialog: QMessageBox | None = None
        self.series_dialog: SeriesListDialog | None = None
        # Each gives (SeriesDescription, DerivationDescription) for a volume it made, or None.
        self.series_describers: list[Callable[[Volume], tuple[str, str] | None]] = []
        self._current: Volume | None = None
        self._load_serial = 0  # a newer load makes older results stale
        self._busy_count = 0
        self._side_docks: list[QDockWidget] = []

        self.viewer = TriPlanarView()
        self.compare: CompareView | None = None
        self.stack = QStackedWidget()
        self.stack.addWidget(self.viewer)
        self.setCentralWidget(self.stack)
        self.viewer.volumeIndexRequested.connect(self._open_series_volume)
        self.viewer.radiologicalChanged.connect(self._set_radiological_everywhere)

        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # indeterminate: loading reports no fraction
        self.busy_bar.setMaximumWidth(140)
        self.busy_bar.hide()
        self.statusBar().addPermanentWidget(self.busy_bar)
        self._build_menus()
        self.statusBar().showMessage("Open a NIfTI file or a DICOM folder (File menu, or drop it on the window)")

    # ----- menus ------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open…", self._open_dialog, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &DICOM folder…", self._open_folder_dialog, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._action(file_menu, "Save &As…", lambda: self.save_volume_as(), QKeySequence.StandardKey.SaveAs)
        self._action(file_menu, "Save As DICOM &series…", lambda: self.save_dicom_series_as())
        self._action(file_menu, "Save &Screenshot…", lambda: self.save_screenshot(), "Ctrl+Shift+P")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self._rebuild_recent_menu()

        self.view_menu = self.menuBar().addMenu("&View")
        self._action(self.view_menu, "&Reset view", self._reset_views, "Home")
        self._action(self.view_menu, "&Auto window", self._auto_window, "Ctrl+W")
        self.neurological_action = self._action(
            self.view_menu, "&Neurological convention", lambda on: self._set_radiological_everywhere(not on), "Ctrl+N"
        )
        self.neurological_action.setCheckable(True)
        self.leave_compare_action = self._action(self.view_menu, "&Leave compare mode", self.leave_compare)
        self.leave_compare_action.setEnabled(False)
        self.view_menu.addSeparator()

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _settings(self) -> QSettings:
        return QSettings(ORGANISATION, APP_NAME)

    def recent_files(self) -> list[str]:
        value = self._settings().value("recent_files", [])
        if isinstance(value, str):  # QSettings gives a str for a one-element list on some platforms
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self._settings().setValue("recent_files", recent[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_files([p]))
        self.recent_menu.setEnabled(bool(recent))

    # ----- the volumes ------------------------------------------------------------------
    @property
    def current_volume(self) -> Volume | None:
        """The primary volume (left in compare mode)."""
        return self._current

    @property
    def active_volume(self) -> Volume | None:
        """What Save As saves: the right volume in compare mode (a translation), else the primary."""
        if self.in_compare_mode() and self.compare.right_volume is not None:
            return self.compare.right_volume
        return self._current

    def set_volume(self, volume: Volume, keep_view: bool = False) -> None:
        """Make `volume` the primary volume and show it."""
        self._current = volume
        self.viewer.set_volume(volume, keep_view=keep_view)
        title = (
            volume.name if volume.n_volumes == 1 else f"{volume.name} [{volume.volume_index + 1}/{volume.n_volumes}]"
        )
        self.setWindowTitle(f"{title} — {APP_NAME}")
        self.volume_changed.emit(volume)

    def open_files(self, file_paths) -> Task | None:
        """Open one file or DICOM folder (primary volume) or two (compare mode), off the GUI
        thread. A folder with several series asks which one first (self.series_dialog)."""
        file_paths = [Path(p) for p in file_paths]
        if not file_paths:
            return None
        if len(file_paths) > 2:
            self.statusBar().showMessage(f"Only the first two of {len(file_paths)} files are opened (compare mode)")
            file_paths = file_paths[:2]
        return self._open_paths(file_paths, {})

    def _open_paths(self, file_paths: list[Path], chosen: dict[Path, str]) -> Task:
        """Load `file_paths`; `chosen` maps a DICOM folder to the series UID picked for it."""

        def work(progress, cancel):
            volumes = []
            for p in file_paths:
                try:
                    volumes.append(load_volume(p, series=chosen.get(p)))
                except dicom.SeriesChoiceError as exc:
                    if p in chosen:  # the chosen series is gone from the folder
                        raise
                    return exc  # the folder's scan, for the list of its series
            for volume in volumes:
                display.volume_stats(volume.data)  # histogram and window, here rather than on the GUI thread
            return volumes

        def done(volumes):
            if isinstance(volumes, dicom.SeriesChoiceError):
                self._choose_series(volumes, file_paths, chosen)
                return
            for p in file_paths:
                self._remember(p.resolve())
            self.set_volume(volumes[0])
            if len(volumes) == 2:
                self.show_compare(volumes[0], volumes[1], volumes[1].name)
            elif self.in_compare_mode():
                self.leave_compare()
            self.statusBar().showMessage(f"Opened {', '.join(_opened_text(p, v) for p, v in zip(file_paths, volumes))}")

        names = ", ".join(p.name for p in file_paths)
        return self._run_load(work, f"Loading {names}…", done)

    def _choose_series(self, choice: dicom.SeriesChoiceError, file_paths: list[Path], chosen: dict) -> None:
        """List the folder's series; the one picked is loaded (with the other path, if any)."""
        folder = choice.folder  # the very Path of file_paths the scan was given
        if self.series_dialog is not None:
            self.series_dialog.close()
        dialog = SeriesListDialog(folder, choice.series, self)
        dialog.series_chosen.connect(lambda uid: self._open_paths(file_paths, {**chosen, folder: uid}))
        dialog.rejected.connect(lambda: self.statusBar().showMessage(f"Nothing opened from {folder}"))
        self.series_dialog = dialog
        self.statusBar().showMessage(f"{folder} holds {len(choice.series)} series: choose one")
        dialog.open()

    def _open_series_volume(self, index: int) -> None:
        volume = self._current
        if volume is None or volume.source_path is None or index == volume.volume_index:
            return
        path = volume.source_path

        def work(progress, cancel):
            volume = load_volume(path, index)
            display.volume_stats(volume.data)
            return volume

        self._run_load(
            work, f"Loading volume {index + 1} of {path.name}…", lambda vol: self.set_volume(vol, keep_view=True)
        )

    def _run_load(self, work, message: str, done) -> Task:
        self._load_serial += 1
        serial = self._load_serial
        self._set_busy(True, message)

        def finished(result):
            self._set_busy(False)
            if serial == self._load_serial:
                done(result)

        def failed(text):
            self._set_busy(False)
            self.show_error("Could not open the file", text)

        return start_task(work, "load", on_finished=finished, on_failed=failed)

    def _set_busy(self, busy: bool, message: str = "") -> None:
        self._busy_count += 1 if busy else -1
        self.busy_bar.setVisible(self._busy_count > 0)
        if busy:
            self.statusBar().showMessage(message)
            self.setCursor(Qt.CursorShape.BusyCursor)
        elif self._busy_count == 0:
            self.unsetCursor()

    def show_error(self, title: str, message: str) -> QMessageBox:
        """A real dialog that does not block the event loop (open(), window-modal)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        self.last_error_dialog = box
        self.statusBar().showMessage(message)
        box.open()
        return box

    def _open_folder_dialog(self) -> None:
        start = str(Path(self._current.source_path).parent) if self._current and self._current.source_path else ""
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM series folder", start)
        if folder:
            self.open_files([folder])

    def _open_dialog(self) -> None:
        start = str(Path(self._current.source_path).parent) if self._current and self._current.source_path else ""
        names, _ = QFileDialog.getOpenFileNames(self, "Open volume(s)", start, OPEN_FILTER)
        if names:
            self.open_files(names)

    def save_volume_as(self, volume: Volume | None = None, path=None) -> Task | None:
        """Save `volume` (default: the active volume) to `path` (default: ask) off the GUI thread.
        The source file is never overwritten (save_volume refuses; the dialog says so)."""
        volume = volume or self.active_volume
        if volume is None:
            self.statusBar().showMessage("Nothing to save: open a volume first")
            return None
        if path is None:
            folder = volume.source_path.parent if volume.source_path else Path.cwd()
            suggestion = str(folder / f"{volume.name}.nii.gz")
            path, _ = QFileDialog.getSaveFileName(self, "Save volume as", suggestion, "NIfTI (*.nii.gz *.nii)")
            if not path:
                return None
        path = Path(path)
        return self._save_in_background(
            lambda: save_volume(volume, path),
            f"Saving {path.name}…",
            lambda saved: f"Saved {saved}",
            "Could not save the volume",
        )

    def _save_in_background(self, write, busy_text: str, saved_text: Callable, error_title: str) -> Task:
        """Run `write()` on a worker with the busy bar; `saved_text(result)` is the status line after."""
        self._set_busy(True, busy_text)

        def finished(saved):
            self._set_busy(False)
            self.statusBar().showMessage(saved_text(saved))

        def failed(text):
            self._set_busy(False)
            self.show_error(error_title, text)

        return start_task(lambda progress, cancel: write(), "save", on_finished=finished, on_failed=failed)

    def save_dicom_series_as(self, volume: Volume | None = None, folder=None) -> Task | None:
        """Write `volume` (default: the active volume) as a DICOM series into `folder` (default:
        ask for a new folder's name) off the GUI thread. A translation is described as synthetic."""
        volume = volume or self.active_volume
        if volume is None:
            self.statusBar().showMessage("Nothing to save: open a volume first")
            return None
        if folder is None:
            origin = volume.source_path or volume.extra.get("derived_from")
            start = Path(origin).parent if origin else Path.cwd()
            folder, _ = QFileDialog.getSaveFileName(
                self, "Save as DICOM series: name a new folder", str(start / f"{volume.name}_dicom"), "Folder (*)"
            )
            if not folder:
                return None
        folder = Path(folder)
        description, derivation = next(
            (d for d in (describe(volume) for describe in self.series_describers) if d is not None),
            EXPORT_DESCRIPTION,
        )
        return self._save_in_background(
            lambda: dicom.write_series(volume, folder, description, derivation),
            f"Writing the DICOM series {folder.name}…",
            lambda written: f"Saved the DICOM series '{description}' in {written}",
            "Could not save the DICOM series",
        )

    def save_screenshot(self, path=None) -> Path | None:
        """Save what the central area shows (viewer or compare mode) as a PNG."""
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "mri-style.png", "PNG image (*.png)")
            if not path:
                return None
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        if not self.centralWidget().grab().save(str(path), "PNG"):
            self.show_error(
                "Could not save the screenshot",
                f"{path}: could not be written. Check the folder exists and is writable",
            )
            return None
        self.statusBar().showMessage(f"Screenshot saved to {path}")
        return path

    # ----- compare mode and overlays ----------------------------------------------------
    def show_compare(self, left: Volume, right: Volume, right_title: str = "") -> None:
        """Two tri-planar views side by side (linked), a difference view and an overlay."""
        self.prepare_compare_view()
        if self._current is not left:
            self._current = left
            self.viewer.set_volume(left)
            self.volume_changed.emit(left)
        self.compare.set_volumes(left, right, right_title)
        for view in (self.compare.left_view, self.compare.right_view):
            view.set_radiological(self.viewer.radiological)
        self.stack.setCurrentWidget(self.compare)
        self.leave_compare_action.setEnabled(True)
        self.setWindowTitle(f"{left.name} | {self.compare.right_title} — {APP_NAME}")

    def prepare_compare_view(self) -> None:
        """Build the (hidden) compare view. Its widgets cost about 0.2 s on the GUI thread, so
        the app builds it while idle after start-up, not when a translation wants it shown."""
        if self.compare is None:
            self.compare = CompareView()
            self.compare.close_requested.connect(self.leave_compare)
            self.compare.left_view.radiologicalChanged.connect(self._set_radiological_everywhere)
            self.stack.addWidget(self.compare)

    def in_compare_mode(self) -> bool:
        return self.compare is not None and self.stack.currentWidget() is self.compare

    def leave_compare(self) -> None:
        self.stack.setCurrentWidget(self.viewer)
        self.leave_compare_action.setEnabled(False)
        if self._current is not None:
            self.setWindowTitle(f"{self._current.name} — {APP_NAME}")

    def set_overlay(self, volume: Volume | None, colormap: str = "hot", opacity: float = 0.5) -> None:
        """Draw `volume` over the primary view (an error map, a mask); None removes it."""
        self.viewer.set_overlay(volume, colormap=colormap, opacity=opacity)

    def show_cycle_map(self, cycle_map: Volume | None, opacity: float = 0.6) -> None:
        """Draw a cycle-consistency map over the translation (right view in compare mode) and
        over the source in the single view; None removes it."""
        self.set_overlay(cycle_map, colormap="hot", opacity=opacity)
        if self.compare is not None:
            self.compare.right_view.set_overlay(cycle_map, colormap="hot", opacity=opacity)

    def _views(self) -> list[TriPlanarView]:
        views = [self.viewer]
        if self.compare is not None:
            views += [self.compare.left_view, self.compare.right_view]
        return views

    def _set_radiological_everywhere(self, radiological: bool) -> None:
        for view in self._views():
            view.set_radiological(radiological)
        self.neurological_action.setChecked(not radiological)

    def _reset_views(self) -> None:
        for view in self._views():
            view.reset_view()

    def _auto_window(self) -> None:
        for view in self._views():
            view.auto_window()

    # ----- panels (extension point) -----------------------------------------------------
    def add_side_panel(self, widget, title: str) -> QDockWidget:
        """Dock `widget` on the right; several panels share the area as tabs."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"panel-{title}")
        dock.setWidget(widget)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        if self._side_docks:
            self.tabifyDockWidget(self._side_docks[0], dock)
        self._side_docks.append(dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    # ----- drag and drop, closing -------------------------------------------------------
    def dragEnterEvent(self, event):
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and all(u.isLocalFile() for u in urls):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event):
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_files(files)

    def closeEvent(self, event):
        for guard in list(self.close_guards):
            if not guard():
                event.ignore()
                return
        event.accept()


def _opened_text(path: Path, volume: Volume) -> str:
    """What the status bar says was opened: the path, and for DICOM which series."""
    source = volume.extra.get("dicom")
    if source is None:
        return str(path)
    s = source.series
    number = "" if s.number is None else f" {s.number}"
    return (
        f"DICOM series{number} '{s.description or volume.name}' ({s.n_slices} slices, {s.orientation}, "
        f"{s.image_size}) from {path}"
    )


def _install_panels(window: MainWindow) -> None:
    """Side panels (translation, training wizard) are added here, and only here."""
    from mri_style_app.ui.training_wizard import TrainingPanel
    from mri_style_app.ui.translate_panel import TranslatePanel

    window.translate_panel = TranslatePanel(window)
    translate_dock = window.add_side_panel(window.translate_panel, "Translate")

    def use_model(path: str) -> None:  # "Use this model" at the end of a training run
        window.translate_panel.load_model_file(path)
        translate_dock.show()
        translate_dock.raise_()

    window.training_panel = TrainingPanel(window, use_model)
    window.add_side_panel(window.training_panel, "Training")
    translate_dock.raise_()
    training_menu = window.menuBar().addMenu("&Training")
    window._action(training_menu, "&Train a model…", window.training_panel.new_wizard)
    window._action(training_menu, "&Open run folder…", window.training_panel.choose_run)


def create_application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANISATION)
    icons = sorted(paths.resources_dir().joinpath("icons").glob("*.png")) + sorted(
        paths.resources_dir().joinpath("icons").glob("*.svg")
    )
    if icons:
        app.setWindowIcon(QIcon(str(icons[0])))
    return app


def create_main_window(files, open_demo: bool = True) -> MainWindow:
    """Build and show the main window, then start opening the files (or the demo volume)."""
    window = MainWindow()
    _install_panels(window)
    window.show()
    if files:
        window.open_files(files)
    elif open_demo:
        demo = paths.demo_t1_path()
        if demo.exists():
            window.open_files([demo])
        else:
            window.statusBar().showMessage(f"The demo volume is missing ({demo}); open a file with File > Open")
    QTimer.singleShot(COMPARE_VIEW_DELAY_MS, window.prepare_compare_view)
    exempt_long_lived_objects()
    return window


def run_gui(files, open_demo: bool = True) -> int:
    """Run the app until the main window closes; returns the exit status."""
    import qasync

    app = create_application()
    app.setQuitOnLastWindowClosed(False)  # the loop below ends when the window closes
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = create_main_window(files, open_demo)
    closed = loop.create_future()
    app.lastWindowClosed.connect(lambda: closed.done() or closed.set_result(0))
    with loop:
        loop.run_until_complete(closed)
    del window
    return 0


__all__ = ["MainWindow", "run_gui", "create_application", "create_main_window"]
