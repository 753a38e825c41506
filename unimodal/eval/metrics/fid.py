"""Fréchet distances: on any features (:func:`frechet_distance`), and the standard FID (Inception-v3 pool features,
2048-d) from Inception weights the user supplies as a file.

Computed with torch-fidelity's own TF-compatible Inception-v3 (``inception-v3-compat``, the network of the
published FID numbers; its resize and normalisation are the library's) and its FID formula (an exact
shortcut where there are fewer images than features, see ``fid``). Nothing is ever
downloaded: without ``inception=<file>`` the standard FID is skipped and the report says so. The weights file
is torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``, or pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` (the same TF graph, the same parameter names).
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import linalg
from tqdm.auto import tqdm

from unimodal.errors import UnimodalError

FEATURE = "2048"   # the pool3 features the standard FID is defined on


def load_inception(path: str | Path, device: str = "cpu") -> Any:
    """torch-fidelity's Inception-v3 with the weights in ``path``; a one-line error names a missing or bad file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    file = Path(path)
    if not file.is_file():
        raise UnimodalError(f"inception={path}: no such file (give the local Inception-v3 FID weights, "
                            "pt_inception-2015-12-05-6726825d.pth, or leave inception= out to skip the standard FID)")
    try:
        # torch-fidelity unpickles with weights_only=False; reading it first with weights_only=True refuses a file
        # whose pickle would run code, so only plain tensors ever reach that call.
        torch.load(file, map_location="cpu", weights_only=True)
        model = FeatureExtractorInceptionV3("inception-v3-compat", [FEATURE], feature_extractor_weights_path=str(file))
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, RuntimeError, KeyError, TypeError,
            AttributeError, ValueError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise UnimodalError(f"inception={path}: not Inception-v3 FID weights torch-fidelity can load ({reason})") \
            from None
    return model.to(device)


@torch.no_grad()
def inception_features(model: Any, images: np.ndarray, batch_size: int = 32, progress: bool = True,
                       desc: str = "inception") -> torch.Tensor:
    """uint8 ``[N, H, W, C]`` (C = 1 or 3) -> float64 ``[N, 2048]``; the model resizes to 299x299 itself."""
    device = next(model.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if batch.shape[1] == 1:   # grey data (Fashion-MNIST): the network reads RGB
        batch = batch.expand(-1, 3, -1, -1)
    chunks = [model(batch[i:i + batch_size].to(device))[0].double().cpu()
              for i in tqdm(range(0, len(batch), batch_size), desc=desc, disable=not progress)]
    return torch.cat(chunks)


def fid(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to features ``a`` and ``b`` (rows are samples)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    if len(a) >= a.shape[1]:
        stats = fid_features_to_statistics(a), fid_features_to_statistics(b)
        return float(fid_statistics_to_metric(*stats, verbose=False)[KEY_METRIC_FID])
    # torch-fidelity takes the eigenvalues of the 2048x2048 product S_a S_b (~7 s on one core); with fewer
    # samples than features, S = X^T X (X centred / sqrt(n-1)) and the nonzero eigenvalues of S_a S_b are those
    # of the small symmetric (X_a X_b^T)(X_a X_b^T)^T, so the same trace costs milliseconds
    x_a, x_b = (((f - f.mean(0)) / max(len(f) - 1, 1) ** 0.5).double().numpy() for f in (a, b))
    cross = x_a @ x_b.T
    root_trace = np.sqrt(np.clip(np.linalg.eigvalsh(cross @ cross.T), 0, None)).sum()
    diff = (a.mean(0) - b.mean(0)).double().numpy()
    return float(diff @ diff + (x_a ** 2).sum() + (x_b ** 2).sum() - 2 * root_trace)


def standard_fid(generated: np.ndarray, real: np.ndarray, weights: str | Path, device: str = "cpu",
                 batch_size: int = 32, progress: bool = True, model: Any = None) -> dict[str, Any]:
    """FID of generated vs real images, and of one half of the real images vs the other (the floor at this
    sample size: FID is biased upwards for few samples). ``model``: the network already loaded from ``weights``."""
    model = model if model is not None else load_inception(weights, device)
    real_features = inception_features(model, real, batch_size, progress, "inception (real)")
    generated_features = inception_features(model, generated, batch_size, progress, "inception (generated)")
    half = len(real_features) // 2
    return {"generated_vs_real": fid(generated_features, real_features),
            "real_half_vs_half": fid(real_features[:half], real_features[half:]) if half > 1 else None,
            "samples": len(generated), "weights": str(weights)}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)): the FID formula, on any features (written here
    because torch-fidelity and pytorch-fid tie it to the Inception network this evaluation cannot download)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a singular product is handled below, not worth a console warning
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():  # offset both, as the reference implementation does
            offset = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(root)))
