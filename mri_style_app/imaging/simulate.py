"""MR contrasts simulated from tissue maps (BrainWeb style), plus noise and bias fields. numpy only.

Used for the paired demo T2w volume and for robustness tests: every voxel's signal is the sum
over tissues of (tissue fraction) x (that tissue's signal for the sequence), as in BrainWeb
(Kwan, Evans & Pike, IEEE TMI 18(11):1085-1097, 1999).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tissue:
    t1_ms: float
    t2_ms: float
    pd: float  # proton density relative to CSF
    t2star_ms: float


# BrainWeb 1.5 T (Kwan et al. 1999), the values ../shared/data/seed-t1-t2/README.md gives.
BRAINWEB_1_5T = {
    "csf": Tissue(t1_ms=2569, t2_ms=329, pd=1.00, t2star_ms=58),
    "gm": Tissue(t1_ms=833, t2_ms=83, pd=0.86, t2star_ms=69),
    "wm": Tissue(t1_ms=500, t2_ms=70, pd=0.77, t2star_ms=61),
}

# 3 T, from the literature, to test that a model is not tuned to one simulation:
#   GM/WM T1 and T2: Stanisz et al., MRM 54(3):507-512, 2005 (GM 1820/99 ms, WM 1084/69 ms);
#   CSF T1: Lu et al., JMRI 22(1):13-22, 2005 (4163 ms);
#   CSF T2: about 1-2 s at 3 T (Spijkerman et al., MAGMA 31:415-424, 2018); 1500 ms taken here;
#   T2*: Peters et al., MRI 25(6):748-753, 2007 (cortical GM ~52 ms, frontal WM ~45 ms); CSF T2*
#   has no settled value, 200 ms is assumed (at TE 4 ms it changes CSF signal by 2 %).
#   Proton density does not depend on the field.
RELAXATION_3T = {
    "csf": Tissue(t1_ms=4163, t2_ms=1500, pd=1.00, t2star_ms=200),
    "gm": Tissue(t1_ms=1820, t2_ms=99, pd=0.86, t2star_ms=52),
    "wm": Tissue(t1_ms=1084, t2_ms=69, pd=0.77, t2star_ms=45),
}

_NO_SIGNAL = Tissue(t1_ms=1.0, t2_ms=1.0, pd=0.0, t2star_ms=1.0)


def _whole_head(brain: dict[str, Tissue], fat: Tissue, muscle: Tissue) -> dict[str, Tissue]:
    """The tissues of a whole head under the names of training/make_synthetic_heads.py: skin and
    dura have CSF's values (BrainWeb's convention), the skull's marrow fat's (an adult's marrow is
    fatty: as bright as the scalp's fat in the real T1w ch2.nii.gz); bone and air have no signal
    (PD 0; their T1 and T2 are placeholders that keep the equations finite)."""
    return {
        **brain,
        "fat": fat,
        "muscle": muscle,
        "skin": brain["csf"],
        "dura": brain["csf"],
        "marrow": fat,
        "bone": _NO_SIGNAL,
        "air": _NO_SIGNAL,
    }


# 1.5 T: BrainWeb's table (Kwan et al. 1999; Aubert-Broche et al., IEEE TMI 25(11), 2006).
HEAD_1_5T = _whole_head(
    BRAINWEB_1_5T,
    fat=Tissue(t1_ms=350, t2_ms=70, pd=1.00, t2star_ms=58),
    muscle=Tissue(t1_ms=900, t2_ms=47, pd=1.00, t2star_ms=30),
)
# 3 T: brain tissues as RELAXATION_3T; fat 382 / 68 ms and muscle 1412 / 50 ms (Gold et al., AJR
# 183(2):343-351, 2004). The T2* of fat and muscle at 3 T are assumed (three quarters of the
# 1.5 T values).
HEAD_3T = _whole_head(
    RELAXATION_3T,
    fat=Tissue(t1_ms=382, t2_ms=68, pd=1.00, t2star_ms=44),
    muscle=Tissue(t1_ms=1412, t2_ms=50, pd=1.00, t2star_ms=23),
)
HEAD_TISSUES = {1.5: HEAD_1_5T, 3.0: HEAD_3T}

# The demo pair's sequences (seed README): T2w spin echo TR 3300 / TE 120 ms; T1w spoiled
# gradient echo TR 18 / TE 10 ms, 30 degrees. The 3 T robustness pair uses other settings.
T2W_1_5T = {"tr_ms": 3300.0, "te_ms": 120.0}
T1W_1_5T = {"tr_ms": 18.0, "te_ms": 10.0, "flip_deg": 30.0}
T2W_3T = {"tr_ms": 4000.0, "te_ms": 100.0}
T1W_3T = {"tr_ms": 20.0, "te_ms": 4.0, "flip_deg": 25.0}


def tissue_fractions(gm: np.ndarray, wm: np.ndarray, brain_mask: np.ndarray) -> dict[str, np.ndarray]:
    """GM, WM and CSF fractions in [0, 1]; CSF = 1 - GM - WM inside the brain, nothing outside."""
    inside = np.asarray(brain_mask, dtype=bool)
    gm = np.where(inside, np.clip(np.asarray(gm, dtype=np.float64), 0, 1), 0.0)
    wm = np.where(inside, np.clip(np.asarray(wm, dtype=np.float64), 0, 1), 0.0)
    csf = np.where(inside, np.clip(1.0 - gm - wm, 0, 1), 0.0)
    return {"csf": csf, "gm": gm, "wm": wm}


def spin_echo(
    fractions: dict[str, np.ndarray], tr_ms: float, te_ms: float, tissues: dict[str, Tissue] = BRAINWEB_1_5T
) -> np.ndarray:
    """S = sum p * PD * (1 - exp(-TR/T1)) * exp(-TE/T2)."""
    signal = np.zeros_like(next(iter(fractions.values())), dtype=np.float64)
    for name, p in fractions.items():
        t = tissues[name]
        signal += p * t.pd * (1 - np.exp(-tr_ms / t.t1_ms)) * np.exp(-te_ms / t.t2_ms)
    return signal.astype(np.float32)


def spoiled_gradient_echo(
    fractions: dict[str, np.ndarray],
    tr_ms: float,
    te_ms: float,
    flip_deg: float,
    tissues: dict[str, Tissue] = BRAINWEB_1_5T,
) -> np.ndarray:
    """S = sum p * PD * sin(a) (1 - E1) / (1 - cos(a) E1) * exp(-TE/T2*), E1 = exp(-TR/T1)."""
    a = np.deg2rad(flip_deg)
    signal = np.zeros_like(next(iter(fractions.values())), dtype=np.float64)
    for name, p in fractions.items():
        t = tissues[name]
        e1 = np.exp(-tr_ms / t.t1_ms)
        signal += p * t.pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1) * np.exp(-te_ms / t.t2star_ms)
    return signal.astype(np.float32)


def add_rician_noise(
    signal: np.ndarray, percent: float, brain_mask: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise whose sigma is `percent` % of the
    brightest brain voxel (BrainWeb's convention). The air around the head becomes Rayleigh noise."""
    sigma = percent / 100.0 * float(np.max(signal[np.asarray(brain_mask, dtype=bool)]))
    real = signal + rng.normal(0.0, sigma, signal.shape)
    imag = rng.normal(0.0, sigma, signal.shape)
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def bias_field(shape: tuple[int, ...], strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field between 1 - strength/2 and 1 + strength/2 (BrainWeb's "20 %
    INU" is strength 0.2): a random quadratic polynomial of the position, scaled to that range."""
    axes = [np.linspace(-1.0, 1.0, n) for n in shape]
    grid = np.meshgrid(*axes, indexing="ij", sparse=True)  # broadcast: no full-size copies per term
    terms = list(grid) + [g * h for i, g in enumerate(grid) for h in grid[i:]]
    poly = np.zeros(shape)
    for c, term in zip(rng.uniform(-1, 1, len(terms)), terms):
        poly = poly + c * term
    lo, hi = float(poly.min()), float(poly.max())
    unit = (poly - lo) / (hi - lo) if hi > lo else np.zeros(shape)  # 0 .. 1
    return (1.0 + strength * (unit - 0.5)).astype(np.float32)


def t2w_from_tissue_maps(
    gm,
    wm,
    brain_mask,
    tissues: dict[str, Tissue] = BRAINWEB_1_5T,
    tr_ms: float = T2W_1_5T["tr_ms"],
    te_ms: float = T2W_1_5T["te_ms"],
) -> np.ndarray:
    """The demo's T2-weighted volume: BrainWeb spin echo, TR 3300 ms, TE 120 ms, no noise."""
    return spin_echo(tissue_fractions(gm, wm, brain_mask), tr_ms, te_ms, tissues)


def simulate_3t_pair(
    gm, wm, brain_mask, seed: int = 0, noise_percent: float = 2.0, bias_strength: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """A paired (T1w, T2w) that differs from the demo pair in every way a model could overfit:
    3 T relaxation times, other sequence settings (T1w spoiled GRE TR 20/TE 4 ms/25 deg, T2w TR
    4000/TE 100 ms), Rician noise and a bias field (each volume its own). Same seed, same output.

    Arrays come back in the maps' voxel order; to store them in another axis order, wrap them
    in a Volume and save `volume.stored_as("LIA")`.
    """
    rng = np.random.default_rng(seed)
    fractions = tissue_fractions(gm, wm, brain_mask)
    t1w = spoiled_gradient_echo(fractions, tissues=RELAXATION_3T, **T1W_3T)
    t2w = spin_echo(fractions, tissues=RELAXATION_3T, **T2W_3T)
    shape = fractions["gm"].shape
    out = []
    for clean in (t1w, t2w):
        biased = clean * bias_field(shape, bias_strength, rng)
        out.append(add_rician_noise(biased, noise_percent, brain_mask, rng))
    return out[0], out[1]
