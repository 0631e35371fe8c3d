"""Make the demo volumes in resources/demo/ from the ICBM 2009a template that nilearn ships.

    .venv/bin/pip install nilearn        # only this script needs it, not the app
    .venv/bin/python training/make_demo_data.py

Writes, byte for byte the same on every run:
  icbm152_2009a_t1w.nii.gz        the real T1 template, copied unchanged
  icbm152_2009a_gm.nii.gz/_wm     its grey/white matter probability maps, copied unchanged
                                  (the tests simulate other contrasts from them)
  icbm152_2009a_brain_mask.nii.gz the template's own brain extent: T1 > 0 (nilearn's copy is
                                  skull-stripped, zero outside the brain)
  icbm152_2009a_t2w_sim.nii.gz    T2w by the BrainWeb spin-echo model (TR 3300, TE 120 ms)
  LICENSE-ICBM.txt                the MNI copyright notice
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mri_style_app.imaging.simulate import t2w_from_tissue_maps  # noqa: E402

OUT = REPO / "resources" / "demo"
PREFIX = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
COPIES = {"t1": "icbm152_2009a_t1w.nii.gz", "gm": "icbm152_2009a_gm.nii.gz", "wm": "icbm152_2009a_wm.nii.gz"}
MASK_NAME = "icbm152_2009a_brain_mask.nii.gz"
T2_NAME = "icbm152_2009a_t2w_sim.nii.gz"
# 12-bit levels, as scanners store them: the rounding error (max/8190) is far below any visible
# or metric effect (its PSNR alone is about 80 dB); the file is 12 % smaller than at 15 bits.
INT16_TOP = 4095

LICENSE = """\
Demo volumes in this folder
===========================

icbm152_2009a_t1w.nii.gz, icbm152_2009a_gm.nii.gz and icbm152_2009a_wm.nii.gz are unchanged
copies of the ICBM 2009a Nonlinear Symmetric template (T1-weighted average and grey/white matter
probability maps, 1 mm, 197 x 233 x 189) as shipped in the nilearn package
(nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz).
icbm152_2009a_brain_mask.nii.gz (T1 > 0) and icbm152_2009a_t2w_sim.nii.gz (a T2-weighted
image simulated from the grey/white matter maps by the BrainWeb spin-echo model, TR 3300 ms,
TE 120 ms) are derived from them by training/make_demo_data.py.

Source: http://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009

Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and
its documentation for any purpose and without fee is hereby granted, provided that the above
copyright notice appear in all copies. The authors and McGill University make no representations
about the suitability of this software for any purpose. It is provided "as is" without express
or implied warranty. The authors are not responsible for any data loss, equipment damage,
property loss, or injury to subjects or patients resulting from the use or misuse of this
software package.

References:
  VS Fonov, AC Evans, K Botteron, CR Almli, RC McKinstry, DL Collins and BDCG. Unbiased average
  age-appropriate atlases for pediatric studies. NeuroImage 54(1), 2011. doi:10.1016/j.neuroimage.2010.07.033
  VS Fonov, AC Evans, RC McKinstry, CR Almli and DL Collins. Unbiased nonlinear average
  age-appropriate brain templates from birth to adulthood. NeuroImage 47 Suppl 1:S102, 2009.
  DL Collins, AP Zijdenbos, WFC Baare and AC Evans. ANIMAL+INSECT: Improved cortical structure
  segmentation. IPMI 1999, LNCS 1613:210-223.
  RKS Kwan, AC Evans and GB Pike. MRI simulation-based evaluation of image-processing and
  classification methods. IEEE TMI 18(11):1085-1097, 1999 (the BrainWeb tissue model).
"""


def nilearn_data_dir() -> Path:
    try:
        import nilearn
    except ImportError:
        sys.exit("error: nilearn is not installed; run: .venv/bin/pip install nilearn")
    return Path(nilearn.__file__).resolve().parent / "datasets" / "data"


def _save(stored: np.ndarray, like: nib.Nifti1Image, path: Path, slope: float = 1.0) -> None:
    """Integers `stored` (x slope) on the template's grid. nibabel writes gzip with mtime 0 and
    no file name, so the bytes are the same on every run."""
    img = nib.Nifti1Image(stored, like.affine, header=like.header.copy(), dtype=stored.dtype)
    img.header.set_slope_inter(slope, 0.0)
    img.header["descrip"] = b"MRI Style demo (training/make_demo_data.py)"
    img.header["cal_min"], img.header["cal_max"] = 0, 0
    nib.save(img, path)


def main() -> int:
    src = nilearn_data_dir()
    OUT.mkdir(parents=True, exist_ok=True)
    for key, name in COPIES.items():
        shutil.copyfile(src / PREFIX.format(key), OUT / name)

    t1_img = nib.load(OUT / COPIES["t1"])
    t1 = np.asanyarray(t1_img.dataobj)
    gm = nib.load(OUT / COPIES["gm"]).get_fdata() / 255.0  # uint8 probabilities 0..255
    wm = nib.load(OUT / COPIES["wm"]).get_fdata() / 255.0
    mask = t1 > 0
    _save(mask.astype(np.uint8), t1_img, OUT / MASK_NAME)

    t2 = t2w_from_tissue_maps(gm, wm, mask)
    slope = float(t2.max()) / INT16_TOP
    _save(np.round(t2 / slope).astype(np.int16), t1_img, OUT / T2_NAME, slope)
    (OUT / "LICENSE-ICBM.txt").write_text(LICENSE)

    total = 0
    for path in sorted(OUT.iterdir()):
        size = path.stat().st_size
        total += size
        print(f"{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}  {size / 1e6:6.2f} MB  {path.name}")
    print(f"total {total / 1e6:.2f} MB; brain mask {mask.sum() / 1e6:.3f} litres")
    return 0


if __name__ == "__main__":
    sys.exit(main())
