"""Opening a DICOM series: the app's pydicom reader beside a dcm2niix conversion plus NIfTI read.

    .venv/bin/python benchmarks/dicom.py [--repeats 5]

The series is the demo head (197 x 233 x 189, 1 mm) written as 189 single-frame files by the
app's own writer into a temporary folder. Both readers run alternately in one process, so a busy
machine slows both alike; the medians are printed side by side.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mri_style_app import paths  # noqa: E402
from mri_style_app.imaging import dicom  # noqa: E402
from mri_style_app.imaging.volume import load_volume  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dcm2niix = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    with tempfile.TemporaryDirectory() as tmp:
        series = dicom.write_series(load_volume(paths.demo_t1_path()), Path(tmp) / "series", "demo", "benchmark")
        ours, theirs = [], []
        for n in range(args.repeats):
            started = time.perf_counter()
            volume = load_volume(series)
            ours.append(time.perf_counter() - started)
            out = Path(tmp) / f"nii{n}"
            out.mkdir()
            started = time.perf_counter()
            subprocess.run(
                [dcm2niix, "-z", "n", "-b", "n", "-f", "x", "-o", str(out), str(series)],
                capture_output=True,
                check=True,
            )
            converted = load_volume(out / "x.nii")
            theirs.append(time.perf_counter() - started)
        assert converted.same_grid(volume, atol=1e-4)
    print(f"series: {volume.shape}, {volume.shape[2]} files")
    print(f"pydicom reader (the app):        median {statistics.median(ours):.2f} s  (min {min(ours):.2f})")
    print(f"dcm2niix conversion + NIfTI read: median {statistics.median(theirs):.2f} s  (min {min(theirs):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
