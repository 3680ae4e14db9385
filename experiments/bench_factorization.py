"""Is a torch NMF worth writing? scikit-learn's NMF (what `circuits factorize` uses) against a
torch NMF by multiplicative updates (Lee & Seung, the usual GPU-friendly choice), on a real
activation matrix: the trained InceptionV3's mixed2 (or the hand-built mixed3b) over skimage photographs.

Both start from the same NNDSVDa initialization; torch runs until its error is within 0.5% of
scikit-learn's (or `--max-iter`). Printed: each one's time and final relative error, and the ratio,
measured in the same process.

    python experiments/bench_factorization.py [--weights handbuilt --layer mixed3b] [--images 4] [--rank 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def torch_mu(a: np.ndarray, s0: np.ndarray, d0: np.ndarray, target: float, max_iter: int, device: str):
    """Multiplicative updates from (s0, d0) until ||A - S D|| <= target; (seconds, error, iterations)."""
    A = torch.as_tensor(a, device=device)
    S, D = torch.as_tensor(s0, device=device).clone(), torch.as_tensor(d0, device=device).clone()
    eps = 1e-12
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    err = float("inf")
    for it in range(1, max_iter + 1):
        D *= (S.T @ A) / (S.T @ S @ D + eps)
        S *= (A @ D.T) / (S @ (D @ D.T) + eps)
        if it % 10 == 0:
            err = float(torch.linalg.norm(A - S @ D))
            if err <= target:
                break
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t, float(torch.linalg.norm(A - S @ D)), it


def main() -> None:
    import skimage.data

    import weights
    from circuits.analysis.factorization import activation_matrix
    from circuits.dataset.sources import resize_short, to_rgb_uint8
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="nsfwjs-inception-v3")
    p.add_argument("--layer", default="mixed2")
    p.add_argument("--images", type=int, default=4, help="how many skimage photographs, factored jointly")
    p.add_argument("--rank", type=int, default=6)
    p.add_argument("--max-iter", type=int, default=5000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()

    model = weights.model(args.weights).eval()
    size = model.graph.default_input_size
    names = ("chelsea", "coffee", "astronaut", "rocket", "camera", "clock")[: args.images]
    images = [resize_short(to_rgb_uint8(getattr(skimage.data, n)(), n), size) for n in names]
    a, _ = activation_matrix(model, args.layer, images)
    norm = np.linalg.norm(a)
    print(f"{args.weights} {args.layer}: matrix {a.shape[0]} positions x {a.shape[1]} channels, rank {args.rank}")

    t = time.perf_counter()
    sk = NMF(n_components=args.rank, init="nndsvda", solver="cd", max_iter=500, tol=1e-4, random_state=0)
    sk.fit(a)
    t_sk = time.perf_counter() - t
    print(f"scikit-learn cd : {t_sk:7.3f} s, relative error {sk.reconstruction_err_ / norm:.4f}, {sk.n_iter_} iterations")

    s0, d0 = _initialize_nmf(a, args.rank, init="nndsvda", random_state=0)
    t_mu, err, it = torch_mu(a, s0, d0, 1.005 * sk.reconstruction_err_, args.max_iter, args.device)
    print(f"torch MU ({args.device}): {t_mu:7.3f} s, relative error {err / norm:.4f}, {it} iterations")
    print(f"ratio torch / scikit-learn: {t_mu / t_sk:.2f}")


if __name__ == "__main__":
    main()
