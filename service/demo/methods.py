"""Which methods the demo runs and with which parameters: small enough that the whole demo takes a couple of
minutes on two cores, large enough that the maps are the methods' own (each randomized method stops at a
reliability target, a sample cap or a time limit, whichever comes first; the page shows which)."""

from __future__ import annotations

import importlib.util
from functools import cache

# Small windows localise; the image's own mean colour keeps perturbed regions in distribution on these textured
# scenes (a black patch is evidence of its own, which the baseline report shows).
BASELINE = {"kind": "KIND_IMAGE_MEAN"}
SEED = 0

# The order of the tiles on the page.
METHODS: dict[str, dict] = {
    "occlusion": {"window": [4], "stride": [2]},
    "rise": {"num_masks": 1000, "grid_size": 6, "target_reliability": 0.9, "max_seconds": 2.0},
    "sobol": {"grid_size": 6, "num_designs": 32, "target_reliability": 0.9, "max_seconds": 2.0},
    "hsic": {"grid_size": 6, "num_designs": 256, "target_reliability": 0.9, "max_seconds": 2.0},
    "lime": {"num_samples": 500, "n_segments": 40, "target_reliability": 0.9, "max_seconds": 2.0},
    "kernel_shap": {"num_samples": 500, "n_segments": 40, "target_reliability": 0.9, "max_seconds": 2.0},
    "wcam": {"num_designs": 32, "levels": 3, "target_reliability": 0.9, "max_seconds": 3.0},
    # CROWN-IBP on a 4 x 4 grid: verified, and a second or so per image once the model's mirror is built.
    "eva": {"grid_size": 4, "bound_method": "BOUND_METHOD_CROWN_IBP"},
}

TITLES = {"occlusion": "Occlusion", "rise": "RISE", "sobol": "Sobol", "hsic": "HSIC", "lime": "LIME",
          "kernel_shap": "KernelSHAP", "wcam": "WCAM", "eva": "EVA"}

# Scored inline on every map; localisation (relevance mass) only where the model ships a ground-truth mask.
METRICS: dict[str, dict] = {"deletion": {"steps": 16}, "insertion": {"steps": 16}, "mu_fidelity": {"num_samples": 64}}
LOCALISATION = {"localisation": {}}

EVA_NOTE = "EVA needs the verify extra: `make install-verify`"


@cache
def eva_installed() -> bool:
    """torch and a working auto_LiRPA (through the service's compatibility layer): EVA can run here."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("auto_LiRPA") is None:
        return False
    try:
        from service.verify import lirpa_compat

        lirpa_compat.auto_lirpa()
    except Exception:  # an installation that does not import is as good as none, for the demo
        return False
    return True


def parse_methods(text: str | None) -> list[str]:
    """``--methods a,b`` as a list in page order; ValueError naming what is unknown."""
    if not text:
        return list(METHODS)
    asked = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in asked if name not in METHODS]
    if unknown or not asked:
        raise ValueError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    return [name for name in METHODS if name in asked]
