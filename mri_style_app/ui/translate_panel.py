"""The Translate panel: pick a model, translate the open volume T1 <-> T2 off the GUI thread,
see the result beside the source, save it, and on request a cycle-consistency map and
PSNR/SSIM/MAE against a reference volume. "Translate a folder..." translates every NIfTI file and
DICOM series of a folder with the model loaded once (cyclegan/batch.py), in one worker task.

torch is imported only inside worker functions (the viewer starts without it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mri_style_app import paths
from mri_style_app.cyclegan import batch
from mri_style_app.cyclegan.presets import PRESETS
from mri_style_app.imaging.volume import Volume, VolumeError, load_volume
from mri_style_app.ui import display
from mri_style_app.ui.dicom_dialogs import ReportDialog
from mri_style_app.ui.help_text import TOOLTIPS
from mri_style_app.ui.workers import Task, exempt_long_lived_objects, register_expected_error, start_task

PLANES = ("axial", "coronal", "sagittal", "tri")
MODEL_FILTER = "MRI Style model (*.safetensors);;Reference CycleGAN generator (*.pth);;All files (*)"
VOLUME_FILTER = "NIfTI (*.nii *.nii.gz *.hdr *.img);;All files (*)"


def _engine():
    """The translation engine, imported on first use (it brings torch)."""
    from mri_style_app.cyclegan import checkpoint, device, translate

    for error in (checkpoint.ModelError, device.DeviceError, translate.TranslationCancelled):
        register_expected_error(error)
    return checkpoint, device, translate


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def time_left(elapsed: float, fraction: float) -> float | None:
    """Seconds left at a steady pace, or None before there is enough to judge."""
    if fraction < 0.02 or elapsed < 0.5:
        return None
    return elapsed * (1 - fraction) / fraction


def describe_model(model) -> str:
    """The model in words for people, from its card: what it sees of the image, and what it was
    trained on."""
    config = model.config
    if config.generator == "unet":
        sees = "Sees the anatomy around each voxel, so it can tell bone from CSF and fat from fluid"
        if config.ngf < PRESETS["unet"].ngf:
            sees += " (a narrower network: faster, a little less exact)"
    elif config.ngf == 0 and config.intensity_depth == 1:
        sees = (
            "Sees each voxel with its nearest neighbours only: close to a fixed intensity mapping, "
            "right inside the brain but not for skull, fat or marrow"
        )
    elif config.ngf == 0:
        sees = "Sees a small neighbourhood of each voxel (a few millimetres), not the anatomy around it"
    else:
        sees = "Sees a wide neighbourhood of each voxel (a ResNet generator with instance norm)"
    return f"{sees}. {_trained_on(model.card.get('training', {}))}"


def _trained_on(training: dict) -> str:
    data = training.get("data") or {}
    if isinstance(data.get("domain_a"), dict):  # a card `mri-style train` wrote
        a, b = data["domain_a"].get("slices", "?"), data["domain_b"].get("slices", "?") if "domain_b" in data else "?"
        text = f"Trained on {a} T1w and {b} T2w slices, unpaired"
        if isinstance(data.get("paired"), dict):
            text += f", and {data['paired'].get('pairs', 'some')} co-registered pairs"
    elif data.get("summary"):  # a card that describes its data in words
        text = f"Trained on {data['summary']}"
    elif data:
        kinds = " ".join(data).lower()
        text = "Trained on unpaired T1w and T2w images" + (" and co-registered pairs" if "pair" in kinds else "")
    else:
        text = "Its card does not say what it was trained on"
    if training.get("init_from"):
        text += f", fine-tuned from {training['init_from']}"
    if training.get("iterations"):
        text += f" ({training['iterations']} iterations{' in its last run' if len(training.get('recipes') or []) > 1 else ''})"
    return text + "."


class TranslatePanel(QWidget):
    """Side panel of the main window: T1 <-> T2 translation of the window's current volume."""

    model_loaded = Signal(str)  # path of a model now in the picker
    result_ready = Signal(object)  # the translated Volume, just back from the worker
    translation_done = Signal(object)  # the translated Volume, now shown in compare mode
    metrics_ready = Signal(dict)  # {"psnr", "ssim", "mae"} of the translation vs the reference

    def __init__(self, window):
        super().__init__()
        self.window = window
        self.models: dict[str, object] = {}  # path -> loaded model
        self.result: Volume | None = None
        self.result_origin: tuple[str, str, str] | None = None  # (model name, direction, source name)
        self.batch_items: list[batch.BatchItem] | None = None  # the last folder run's inputs
        self.report_dialog: ReportDialog | None = None
        self.source: Volume | None = None
        self.cycle_map: Volume | None = None
        self.reference: Volume | None = None
        self.mask: Volume | None = None
        self.metrics: dict | None = None
        self.device_text = ""
        self.task: Task | None = None
        self.metrics_task: Task | None = None
        window.close_guards.append(self._finish_background_work)
        window.series_describers.append(self._describe_series)
        self._loading: dict[str, Task] = {}
        self._after_load: Callable[[], object] | None = None  # what waits for a bundled model to load
        self._build()
        for name, bundled in paths.bundled_models().items():
            if bundled.is_file():
                self.model_combo.addItem(f"Bundled {name} ({bundled.name})", str(bundled))
        self._update_buttons()
        window.volume_changed.connect(lambda _v: self._update_buttons())

    # ----- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        self.model_combo = QComboBox()
        self.model_combo.setToolTip(
            "The model that translates; load your own trained model (RUN/model.safetensors) with 'Load model file...'"
        )
        self.model_combo.currentIndexChanged.connect(self._model_selected)
        self.load_button = QPushButton("Load model file...")
        self.load_button.clicked.connect(self._choose_model_file)
        self.model_info = QLabel("No model loaded")
        self.model_info.setWordWrap(True)
        self.model_info.setStyleSheet("color: #555;")
        self.direction_combo = QComboBox()
        self.direction_combo.addItems(["t1-to-t2", "t2-to-t1"])
        self.planes_combo = QComboBox()
        self.planes_combo.addItems(PLANES)
        self.planes_combo.setToolTip(TOOLTIPS["planes"])
        self.device_label = QLabel("(known once a model is loaded)")
        self.cycle_checkbox = QCheckBox("Cycle-consistency map (where the model is unsure)")
        self.cycle_checkbox.setToolTip(TOOLTIPS["cycle_map"])

        form = QFormLayout()
        form.addRow("Model", self.model_combo)
        form.addRow("", self.load_button)
        form.addRow("", self.model_info)
        form.addRow("Direction", self.direction_combo)
        form.addRow("Planes", self.planes_combo)
        form.addRow("Device", self.device_label)

        self.translate_button = QPushButton("Translate")
        self.translate_button.setDefault(True)
        self.translate_button.clicked.connect(self.translate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.translate_button, 1)
        buttons.addWidget(self.cancel_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.time_label = QLabel("")
        self.status_label = QLabel("Open a volume, pick a model and press Translate.")
        self.status_label.setWordWrap(True)
        self.save_button = QPushButton("Save translated volume...")
        self.save_button.clicked.connect(self.save_result)
        self.folder_button = QPushButton("Translate a folder...")
        self.folder_button.setToolTip(
            "Translate every NIfTI file and DICOM series folder inside a folder, with the model, direction "
            "and planes above; the results go to an output folder, named after their inputs"
        )
        self.folder_button.clicked.connect(lambda: self.translate_folder())
        self.dicom_checkbox = QCheckBox("Write DICOM series (else NIfTI)")
        self.dicom_checkbox.setToolTip(
            "Each result as a DICOM series folder marked as synthetic; a DICOM input's result joins its study"
        )
        folder_box = QGroupBox("Many volumes")
        folder_layout = QVBoxLayout(folder_box)
        folder_layout.addWidget(self.folder_button)
        folder_layout.addWidget(self.dicom_checkbox)

        self.reference_button = QPushButton("Reference...")
        self.reference_button.setToolTip(
            "A volume of the target contrast on the same grid (for "
            "example the demo T2) to score the translation against"
        )
        self.reference_button.clicked.connect(self._choose_reference)
        self.mask_button = QPushButton("Mask...")
        self.mask_button.setToolTip("Optional brain mask: metrics are taken inside it only")
        self.mask_button.clicked.connect(self._choose_mask)
        self.reference_label = QLabel("No reference volume")
        self.reference_label.setWordWrap(True)
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        ref_buttons = QHBoxLayout()
        ref_buttons.addWidget(self.reference_button)
        ref_buttons.addWidget(self.mask_button)
        ref_box = QGroupBox("Score against a reference")
        ref_layout = QVBoxLayout(ref_box)
        ref_layout.addLayout(ref_buttons)
        ref_layout.addWidget(self.reference_label)
        ref_layout.addWidget(self.metrics_label)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.cycle_checkbox)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.time_label)
        layout.addWidget(self.status_label)
        layout.addWidget(self.save_button)
        layout.addWidget(folder_box)
        layout.addWidget(ref_box)
        layout.addStretch(1)

    def _update_buttons(self) -> None:
        busy = self.task is not None
        self.translate_button.setEnabled(
            not busy and self.window.current_volume is not None and self.model_combo.count() > 0
        )
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(not busy and self.result is not None)
        self.load_button.setEnabled(not busy)
        self.folder_button.setEnabled(not busy and self.model_combo.count() > 0)

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.window.statusBar().showMessage(text)

    # ----- models -----------------------------------------------------------------------
    def current_model_path(self) -> str | None:
        return self.model_combo.currentData()

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model file", "", MODEL_FILTER)
        if path:
            self.load_model_file(path)

    def load_model_file(self, path) -> Task:
        """Load and check a model file off the GUI thread; it joins the picker if it is valid."""
        path = str(Path(path).resolve())
        if path in self._loading:
            return self._loading[path]

        def work(progress, cancel):
            checkpoint, device, _ = _engine()
            model = checkpoint.load_model(path)
            return model, device.describe_device(device.choose_device("auto"))

        def done(result):
            self._loading.pop(path, None)
            model, self.device_text = result
            self.models[path] = model
            exempt_long_lived_objects()  # torch and the model are loaded now
            self.device_label.setText(self.device_text)
            index = self.model_combo.findData(path)
            if index < 0:
                self.model_combo.addItem(Path(path).name, path)
                index = self.model_combo.count() - 1
            self.model_combo.setCurrentIndex(index)
            self._show_model_info()
            self._set_status(f"Model ready: {Path(path).name}")
            self._update_buttons()
            self.model_loaded.emit(path)
            after, self._after_load = self._after_load, None
            if after is not None:
                after()

        def failed(text):
            self._loading.pop(path, None)
            self._after_load = None
            self._set_status(f"Could not load the model: {text}")
            self.window.show_error("Could not load the model", text)
            self._update_buttons()

        self._set_status(f"Loading model {Path(path).name}...")
        task = start_task(work, "load model", on_finished=done, on_failed=failed)
        self._loading[path] = task
        return task

    def _model_selected(self, _index: int) -> None:
        self._show_model_info()

    def _show_model_info(self) -> None:
        model = self.models.get(self.current_model_path() or "")
        if model is None:
            self.model_info.setText("Loads when you press Translate")
            return
        self.model_info.setText(describe_model(model))
        current = self.direction_combo.currentText()
        self.direction_combo.clear()
        self.direction_combo.addItems(list(model.directions))
        if current in model.directions:
            self.direction_combo.setCurrentText(current)

    # ----- translation ------------------------------------------------------------------
    def translate(self) -> Task | None:
        """Translate the window's current volume with the chosen model, direction and planes."""
        source = self.window.current_volume
        path = self.current_model_path()
        if source is None or path is None or self.task is not None:
            self._set_status(
                "Open a volume and choose a model first." if self.task is None else "A translation is already running."
            )
            return None
        model = self.models.get(path)
        if model is None:  # a bundled model loads on first use
            self._after_load = self.translate
            return self.load_model_file(path)
        direction = self.direction_combo.currentText()
        planes = self.planes_combo.currentText()
        with_cycle = self.cycle_checkbox.isChecked()
        origin = (model.name, direction, source.name)

        def work(progress, cancel):
            _, _, translate = _engine()
            share = 0.5 if with_cycle else 1.0
            result = translate.translate_volume(
                source,
                model,
                direction,
                planes=planes,
                device="auto",
                cancel=cancel,
                progress=lambda f, m="": progress(share * f, m or "Translating"),
            )
            cycle_map = None
            if with_cycle:
                cycle_map = translate.cycle_error_volume(
                    source,
                    model,
                    direction,
                    planes=planes,
                    device="auto",
                    cancel=cancel,
                    translated=result,  # only the way back is left to compute
                    progress=lambda f, m="": progress(0.5 + 0.5 * f, "Cycle-consistency map"),
                )
            for volume in (result, cycle_map, source):  # what showing them needs, off the GUI thread
                if volume is not None:
                    display.volume_stats(volume.data)
            return result, cycle_map, origin

        self.source = source
        self.progress_bar.setValue(0)
        self.time_label.setText("")
        self._set_status(f"Translating {source.name} ({direction}, {planes})...")
        self.task = start_task(
            work,
            "translate",
            on_finished=self._translated,
            on_failed=self._translation_failed,
            on_progress=self._progress,
            on_cancelled=self._translation_cancelled,
        )
        self._update_buttons()
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self._set_status("Cancelling...")

    def _progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(1000 * fraction))
        if self.task is None:
            return
        left = time_left(time.monotonic() - self.task.started_at, fraction)
        self.time_label.setText(
            f"{message}: {fraction:.0%}" + ("" if left is None else f", about {format_seconds(left)} left")
        )

    def _finish_task(self) -> float:
        elapsed = time.monotonic() - self.task.started_at if self.task else 0.0
        self.task = None
        self._update_buttons()
        return elapsed

    def _translated(self, outcome) -> None:
        elapsed = self._finish_task()
        self.result, self.cycle_map, self.result_origin = outcome
        self.result_ready.emit(self.result)
        self.progress_bar.setValue(1000)
        self.time_label.setText(f"Done in {format_seconds(elapsed)}")
        self._set_status(f"Translated {self.source.name} in {elapsed:.1f} s. Left: source, right: translation.")
        self.window.show_compare(self.source, self.result, self.result.name)
        self.window.show_cycle_map(self.cycle_map)  # None clears an earlier one
        if self.cycle_map is not None:
            self._set_status(
                f"{self.status_label.text()} The cycle-consistency map is drawn in hot "
                "colours over the translation (and over the source in the single view)."
            )
        self._update_buttons()
        self.translation_done.emit(self.result)
        self._compute_metrics()

    def _translation_failed(self, text: str) -> None:
        self._finish_task()
        self.progress_bar.setValue(0)
        self.time_label.setText("")
        self._set_status(f"Translation failed: {text}")
        self.window.show_error("Translation failed", text)

    def _translation_cancelled(self) -> None:
        self._finish_task()
        self.progress_bar.setValue(0)
        self.time_label.setText("")
        self._set_status("Translation cancelled; nothing changed.")

    def save_result(self):
        if self.result is not None:
            return self.window.save_volume_as(self.result)
        return None

    def _describe_series(self, volume: Volume) -> tuple[str, str] | None:
        """A translation saved as a DICOM series says it is synthetic, and from what."""
        if volume is self.result and self.result_origin is not None:
            return batch.synthetic_descriptions(*self.result_origin)
        return None

    # ----- a folder of volumes ----------------------------------------------------------
    def translate_folder(self, input_dir=None, out_dir=None) -> Task | None:
        """Translate every volume found in `input_dir` into `out_dir` (default: ask for both)
        with the current model, direction and planes, in one worker task; a report at the end."""
        path = self.current_model_path()
        if path is None or self.task is not None:
            self._set_status("Choose a model first." if self.task is None else "A translation is already running.")
            return None
        if input_dir is None:
            input_dir = QFileDialog.getExistingDirectory(self, "Translate a folder: the input folder")
            if not input_dir:
                return None
        if out_dir is None:
            out_dir = QFileDialog.getExistingDirectory(
                self, "Translate a folder: where the results go", str(Path(input_dir).parent)
            )
            if not out_dir:
                return None
        input_dir, out_dir = Path(input_dir), Path(out_dir)
        model = self.models.get(path)
        if model is None:  # a bundled model loads on first use
            self._after_load = lambda: self.translate_folder(input_dir, out_dir)
            return self.load_model_file(path)
        direction = self.direction_combo.currentText()
        planes = self.planes_combo.currentText()
        fmt = "dicom" if self.dicom_checkbox.isChecked() else "nifti"
        run: dict[str, list] = {}  # the items, for the report of a cancelled run too

        def work(progress, cancel):
            _engine()
            if not input_dir.is_dir():
                raise VolumeError(f"{input_dir}: is not a folder. Choose the folder that holds the volumes")
            inputs = batch.find_inputs(input_dir)
            if not inputs:
                raise VolumeError(
                    f"{input_dir}: holds no NIfTI files and no DICOM series. Choose the folder that holds the volumes"
                )
            if out_dir.exists() and not out_dir.is_dir():
                raise VolumeError(f"{out_dir}: is a file. Choose a folder for the results")
            run["items"] = batch.plan_batch(inputs, out_dir, direction, fmt)
            out_dir.mkdir(parents=True, exist_ok=True)
            return batch.translate_batch(
                run["items"], model, direction, fmt=fmt, planes=planes, device="auto", progress=progress, cancel=cancel
            )

        self.batch_items = None
        self.progress_bar.setValue(0)
        self.time_label.setText("")
        self._set_status(f"Translating the volumes in {input_dir} ({direction}, {planes}) into {out_dir}...")
        self.task = start_task(
            work,
            "translate folder",
            on_finished=lambda items: self._folder_done(items, out_dir, cancelled=False),
            on_failed=self._folder_failed,
            on_progress=self._progress,
            on_cancelled=lambda: self._folder_done(run.get("items"), out_dir, cancelled=True),
        )
        self._update_buttons()
        return self.task

    def _folder_done(self, items, out_dir: Path, cancelled: bool) -> None:
        elapsed = self._finish_task()
        self.time_label.setText(f"{'Stopped after' if cancelled else 'Done in'} {format_seconds(elapsed)}")
        if not cancelled:
            self.progress_bar.setValue(1000)
        if not items:
            self.progress_bar.setValue(0)
            self._set_status("Folder translation cancelled before it started; nothing written.")
            return
        self.batch_items = items
        summary = ", ".join(f"{n} {s}" for s, n in batch.status_counts(items).items() if n)
        what = "Folder translation cancelled" if cancelled else "Folder translated"
        self._set_status(f"{what}: {summary} ({len(items)} input(s)); results in {out_dir}.")
        if self.report_dialog is not None:
            self.report_dialog.close()
        self.report_dialog = ReportDialog(what, self.status_label.text(), batch.report(items), self.window)
        self.report_dialog.open()

    def _folder_failed(self, text: str) -> None:
        self._finish_task()
        self.progress_bar.setValue(0)
        self.time_label.setText("")
        self._set_status(f"Folder translation failed: {text}")
        self.window.show_error("Folder translation failed", text)

    # ----- reference and metrics --------------------------------------------------------
    def _choose_reference(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference volume", "", VOLUME_FILTER)
        if path:
            self.set_reference(path)

    def _choose_mask(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Mask volume", "", VOLUME_FILTER)
        if path:
            self.set_reference(None, mask_path=path)

    def set_reference(self, path=None, mask_path=None) -> Task:
        """Load a reference volume and/or a mask (off the GUI thread), then score the translation."""

        def work(progress, cancel):
            return (load_volume(path) if path else None, load_volume(mask_path) if mask_path else None)

        def done(volumes):
            reference, mask = volumes
            self.reference = reference or self.reference
            self.mask = mask or self.mask
            parts = []
            if self.reference is not None:
                parts.append(f"Reference: {self.reference.name}")
            if self.mask is not None:
                parts.append(f"mask: {self.mask.name}")
            self.reference_label.setText(", ".join(parts) or "No reference volume")
            self._compute_metrics()

        def failed(text):
            self.window.show_error("Could not open the reference", text)

        return start_task(work, "load reference", on_finished=done, on_failed=failed)

    def _compute_metrics(self) -> Task | None:
        from mri_style_app.imaging.metrics import evaluate_pair, head_mask

        result, reference, mask, source = self.result, self.reference, self.mask, self.source
        if result is None or reference is None:
            return None
        if not result.same_grid(reference):
            self.metrics_label.setText(
                f"The reference {reference.name} is on another grid "
                f"({reference.shape}) than the translation ({result.shape}): "
                "no scores. Choose a reference resampled to the source."
            )
            return None
        if mask is not None and not result.same_grid(mask):
            self.metrics_label.setText(
                f"The mask {mask.name} is on another grid than the translation: scoring the whole head instead."
            )
            mask = None
        self.metrics_label.setText("Scoring...")

        def work(progress, cancel):
            if mask is not None:
                return evaluate_pair(result.data, reference.data, mask.data > 0)
            partners = [source.data] if source is not None and source.same_grid(reference) else []
            return evaluate_pair(result.data, reference.data, head_mask(*partners, reference.data))

        def done(metrics):
            if result is not self.result:
                return  # a newer translation replaced this one
            self.metrics = metrics
            where = "inside the mask" if mask is not None else "whole head"
            self.metrics_label.setText(
                f"PSNR {metrics['psnr']:.2f} dB   SSIM {metrics['ssim']:.3f}   "
                f"MAE {metrics['mae']:.4f}  ({where}; each scaled to [0, 1])"
            )
            self.metrics_ready.emit(metrics)

        def failed(text):
            self.metrics_label.setText(f"Could not score: {text}")

        self.metrics_task = start_task(work, "metrics", on_finished=done, on_failed=failed)
        return self.metrics_task

    def _finish_background_work(self) -> bool:
        """On closing the window: cancel a translation and let a scoring end (seconds), so no
        worker reports to a panel that is gone."""
        for task in (self.task, self.metrics_task):
            if task is not None and task.is_running():
                task.cancel()
                task.wait(30)
        return True
