"""The packaged app: build the PyInstaller bundle and run the frozen executable for real.

Slow (a build takes several minutes), so these run only with MRI_STYLE_SLOW=1. A bundle in
build/dist/ newer than every source file, resource and the spec is reused instead of rebuilt
(MRI_STYLE_REBUILD=1 forces a build; MRI_STYLE_REUSE_BUNDLE=1 uses whatever bundle is there).
"""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from mri_style_app import __version__

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("MRI_STYLE_SLOW") != "1",
        reason="builds the PyInstaller bundle (minutes); set MRI_STYLE_SLOW=1 to run",
    ),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the bundle checks are written for Linux"),
]

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "build" / "dist" / "mri-style"
EXE = BUNDLE / "mri-style"
INTERNAL = BUNDLE / "_internal"
BUILD_TIMEOUT_S = 40 * 60
X11_PACKAGES = [
    "xvfb",
    "x11-utils",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-image0",
    "libxcb-render-util0",
    "libxkbcommon-x11-0",
    "libxcb-shape0",
]


def _sources() -> list[Path]:
    files = list((REPO / "mri_style_app").rglob("*.py"))
    for sub in ("demo", "models", "icons"):
        files += [p for p in (REPO / "resources" / sub).glob("*") if p.is_file()]
    return files + [REPO / "build" / "mri_style.spec", REPO / "build" / "launcher.py"]


def _bundle_is_fresh() -> bool:
    if not EXE.is_file() or os.environ.get("MRI_STYLE_REBUILD") == "1":
        return False
    if os.environ.get("MRI_STYLE_REUSE_BUNDLE") == "1":
        return True
    return EXE.stat().st_mtime > max(p.stat().st_mtime for p in _sources())


@pytest.fixture(scope="module")
def exe() -> Path:
    if not _bundle_is_fresh():
        result = subprocess.run(
            ["bash", str(REPO / "build" / "build.sh")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        assert result.returncode == 0, f"build failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        print(result.stdout.strip().splitlines()[-3:])
    assert EXE.is_file() and os.access(EXE, os.X_OK)
    return EXE


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "PYTHON"))}
    env.pop("DISPLAY", None)
    env.update(extra)
    return env


def _run(args, timeout=300, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=_env(**env), cwd=str(REPO)
    )


@pytest.fixture(scope="module")
def x11_tools() -> None:
    """Xvfb, xwininfo and the X libraries Qt's xcb plugin loads; installed with apt-get if we may."""
    missing = [tool for tool in ("Xvfb", "xwininfo") if shutil.which(tool) is None]
    # Qt 6.5+ refuses the xcb platform without libxcb-cursor (and the others in X11_PACKAGES).
    missing += [
        f"lib{lib}"
        for lib in ("xcb-cursor", "xcb-icccm", "xcb-keysyms", "xkbcommon-x11")
        if ctypes.util.find_library(lib) is None
    ]
    if missing:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip(f"{', '.join(missing)} not installed and not root to apt-get install {X11_PACKAGES}")
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, timeout=600)
        result = subprocess.run(
            ["apt-get", "install", "-y", "-qq", *X11_PACKAGES], capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            pytest.skip(f"apt-get install {' '.join(X11_PACKAGES)} failed: {result.stderr[-500:]}")


@contextmanager
def xvfb_display():
    """A private X server; yields its DISPLAY (Xvfb picks a free number and reports it)."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        number = os.read(read_fd, 32).decode().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        os.close(read_fd)
        server.terminate()
        server.wait(timeout=10)


def _app_window_titles(display: str) -> list[str]:
    """Titles of the app's top-level windows that are mapped (visible) on this display."""
    tree = subprocess.run(
        ["xwininfo", "-root", "-tree", "-display", display], capture_output=True, text=True, timeout=10
    ).stdout
    titles = []
    # Only real top-level windows carry the WM_CLASS ("mri-style" "MRI Style"); Qt's helper
    # windows have none, and may exist before the main window is mapped.
    for match in re.finditer(r'^\s*(0x[0-9a-f]+) "(.*)": \("mri-style"', tree, re.MULTILINE):
        state = subprocess.run(
            ["xwininfo", "-id", match.group(1), "-display", display], capture_output=True, text=True, timeout=10
        ).stdout
        if "IsViewable" in state:
            titles.append(match.group(2))
    return titles


def test_version(exe):
    result = _run([exe, "--version"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mri-style {__version__}"


def test_bundle_has_the_resources_and_leaves_out_what_the_app_never_uses(exe):
    resources = INTERNAL / "resources"
    assert (resources / "demo" / "icbm152_2009a_t1w.nii.gz").is_file()
    assert (resources / "models" / "t1_t2_default.safetensors").is_file()
    assert (resources / "icons" / "mri-style-256.png").is_file()
    assert (INTERNAL / "torch" / "bin" / "torch_shm_manager").is_file()
    assert (INTERNAL / "scipy" / "ndimage").is_dir()  # the scoring protocol's morphology and filters
    for absent in (
        "skimage",
        "sklearn",
        "pandas",
        "nilearn",
        "torch/include",
        "torch/test",
        "PySide6/Qt/translations",
        "PySide6/Qt/qml",
    ):
        assert not (INTERNAL / absent).exists(), f"{absent} should not be in the bundle"
    cuda = [p.name for p in INTERNAL.rglob("*") if re.match(r"lib(cudart|cudnn|cublas|nccl|cuda)", p.name)]
    assert not cuda and not (INTERNAL / "nvidia").exists(), f"CUDA libraries in the CPU bundle: {cuda[:5]}"
    assert not (INTERNAL / "scipy" / "sparse").exists(), "only scipy.ndimage and what it imports are bundled"
    # Essentials only: no Addons libraries such as WebEngine, Quick3D, Charts, Multimedia.
    qt_libs = " ".join(p.name for p in (INTERNAL / "PySide6" / "Qt" / "lib").glob("*"))
    assert not re.search(r"WebEngine|Quick3D|Charts|Multimedia|DataVisualization", qt_libs), qt_libs


def test_bundle_is_under_700_mb_with_the_big_libraries_stripped(exe):
    size_mb = sum(p.stat().st_size for p in EXE.parent.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20
    assert size_mb <= 700, f"the bundle is {size_mb:.0f} MB; docs/packaging.md shows where it goes"
    sections = subprocess.run(
        ["readelf", "-S", "-W", str(INTERNAL / "torch" / "lib" / "libtorch_cpu.so")], capture_output=True, text=True
    )
    if sections.returncode != 0:
        pytest.skip("readelf is not installed")
    assert ".symtab" not in sections.stdout, "libtorch_cpu.so still carries its symbol table"


def test_frozen_app_reads_and_writes_compressed_dicom(exe, tmp_path):
    """pydicom's decoders and pylibjpeg's plugins are found by name at run time: the bundle has them."""
    from dicom_series import SeriesSpec, write_series
    from pydicom.uid import JPEG2000Lossless, RLELossless

    from mri_style_app import paths
    from mri_style_app.imaging.volume import load_volume

    demo = load_volume(paths.demo_t1_path())
    for n, syntax in enumerate((JPEG2000Lossless, RLELossless)):
        series = write_series(
            tmp_path / f"s{n}", demo.data, demo.affine, SeriesSpec(size=(48, 48, 16), transfer_syntax=syntax)
        )
        result = _run([exe, "info", series.folder, "--json"], timeout=120)
        assert result.returncode == 0, result.stderr
        assert '"format": "DICOM"' in result.stdout
    out = tmp_path / "synthetic"
    result = _run([exe, "translate", tmp_path / "s0", out, "--direction", "t1-to-t2", "--format", "dicom"], timeout=300)
    assert result.returncode == 0, result.stderr
    assert load_volume(out).same_grid(load_volume(tmp_path / "s0"), atol=1e-5)


def test_frozen_app_writes_a_gzipped_nifti(exe, tmp_path):
    """The .nii.gz writer (isal) is a compiled extension: the bundle has it."""
    from mri_style_app import paths
    from mri_style_app.imaging.volume import load_volume

    out = tmp_path / "synthetic.nii.gz"
    result = _run([exe, "translate", paths.demo_t1_path(), out, "--direction", "t1-to-t2"], timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    translated = load_volume(out)
    assert translated.same_grid(load_volume(paths.demo_t1_path()), atol=1e-5) and translated.data.any()


def test_selftest_offscreen(exe):
    result = _run([exe, "--selftest"], timeout=600, QT_QPA_PLATFORM="offscreen")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_selftest_without_stdout_and_stderr(exe, tmp_path):
    """A windowed launch has no console: fds 1 and 2 closed must not crash the app."""
    keep = tmp_path / "keep"
    command = f'"{exe}" selftest --keep "{keep}" >&- 2>&-'
    result = subprocess.run(["bash", "-c", command], timeout=600, env=_env(QT_QPA_PLATFORM="offscreen"))
    assert result.returncode == 0
    assert any(keep.iterdir()), "the self-test wrote nothing"


def test_selftest_under_xvfb(exe, x11_tools):
    with xvfb_display() as display:
        result = _run([exe, "--selftest"], timeout=600, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_gui_window_opens_the_file_from_the_command_line_under_xvfb(exe, x11_tools, tmp_path):
    """Double-click path: `mri-style FILE` shows the window, then the file's name in its title."""
    volume = tmp_path / "double_clicked.nii.gz"
    shutil.copyfile(REPO / "resources" / "demo" / "icbm152_2009a_t1w.nii.gz", volume)
    with xvfb_display() as display:
        start = time.perf_counter()
        app = subprocess.Popen(
            [str(exe), str(volume)], env=_env(DISPLAY=display), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        shown = loaded = None
        try:
            while time.perf_counter() - start < 120 and loaded is None and app.poll() is None:
                titles = " ".join(_app_window_titles(display))
                if shown is None and "MRI Style" in titles:
                    shown = time.perf_counter() - start
                if "double_clicked" in titles:
                    loaded = time.perf_counter() - start
                time.sleep(0.05)
            stderr = "" if app.poll() is None else app.stderr.read().decode(errors="replace")
        finally:
            app.terminate()
            app.wait(timeout=30)
    assert shown is not None, f"no MRI Style window appeared: {stderr[-3000:]}"
    assert loaded is not None, f"the file given on the command line was not opened: {stderr[-3000:]}"
    print(f"\ncold start: window shown after {shown:.1f} s, file loaded after {loaded:.1f} s")


def test_frozen_train_help(exe):
    result = _run([exe, "train", "--help"], timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--domain-a" in result.stdout and "--iterations" in result.stdout


def _tiny_domains(seed_dir: Path, tmp_path: Path) -> list:
    domains = {}
    for name in ("T1", "T2"):
        domains[name] = tmp_path / name
        domains[name].mkdir()
        for png in sorted((seed_dir / name).glob("*.png"))[:3]:
            shutil.copyfile(png, domains[name] / png.name)
    return [
        "--domain-a",
        domains["T1"],
        "--domain-b",
        domains["T2"],
        "--preset",
        "lite",
        "--size",
        "32",
        "--iterations",
        "2",
        "--log-every",
        "1",
        "--device",
        "cpu",
    ]


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]


def test_frozen_tiny_training_run(exe, seed_dir, tmp_path):
    """What the wizard does: the frozen executable with the train subcommand."""
    out = tmp_path / "run"
    result = _run([exe, "train", *_tiny_domains(seed_dir, tmp_path), "--out", out], timeout=600)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert (out / "model.safetensors").is_file()
    events = _events(out)
    assert events and events[-1]["type"] == "done", events[-3:]


def test_frozen_ddp_training_with_two_gloo_ranks(exe, seed_dir, tmp_path):
    """torch.distributed (gloo) works in the bundle: two ranks started the way torchrun starts them."""
    out = tmp_path / "run"
    args = [str(a) for a in [exe, "train", *_tiny_domains(seed_dir, tmp_path), "--out", out]]
    port = str(29500 + os.getpid() % 1000)
    ranks = [
        subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
        )
        for rank in (0, 1)
    ]
    outputs = [rank.communicate(timeout=600)[0] for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    done = _events(out)[-1]
    assert done["type"] == "done" and done.get("weights_in_sync") is True, done
