"""W16 The ELBO of a VAE: reconstruction against staying close to the prior.

For one binarised image x the explorer shows, in nats,

    reconstruction   E_q[-log p(x | z)]          (SAMPLES reparameterised draws of z ~ q(z | x))
    KL               KL(q(z | x) || N(0, I))     (closed form, 1/2 sum(mu^2 + s^2 - 1 - log s^2))
    -ELBO            reconstruction + KL
    -log p(x)        estimated by the importance-weighted bound with SAMPLES samples (Burda et
                     al. 2016), which is at least the ELBO of the same samples (Jensen)

and a point z of the 2-D latent space that the reader moves: the image decoded there, and the
integrand log p(x | z) + log p(z) - log q(z | x) at that point. q(z | x) is drawn as its
2-standard-deviation ellipse over the encodings of many images. The KL weight only rescales the
KL bar (a beta-VAE would train with it); nothing is retrained.

The model is passed in (section 8.3 passes the VAE it trains): anything with
``encode(x) -> (mu, log_var)`` for (B, 784) images and ``decode(z) -> logits`` (Bernoulli
logits, (..., 784)), with a 2-D latent. Without one, the explorer trains a tiny VAE (784-64-2,
2-64-784) for 4 epochs on 10,000 binarised FashionMNIST training images, deterministically
from fixed seeds (about a second on a CPU), and shows validation images: a real but small
model, so its ELBO is far from the section's.

Aha: the ELBO trades reconstruction against staying close to the prior; its gap to log p(x)
is a KL, and the importance-weighted bound closes part of it.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Explorer, Slider, panels, show as _show, validate

IMAGES, MAP_POINTS, SAMPLES, SEED = 8, 2000, 256, 16
LOG_2PI = math.log(2 * math.pi)

CONTROLS = (
    Slider("image", f"image (0 to {IMAGES - 1})", 0, IMAGES - 1, 1, 0, integer=True),
    Slider("z1", "latent z₁", -3.0, 3.0, 0.1, 0.0),
    Slider("z2", "latent z₂", -3.0, 3.0, 0.1, 0.0),
    Slider("kl_weight", "visual weight on the KL", 0.0, 3.0, 0.1, 1.0),
)


class TinyVAE(nn.Module):
    """The gallery's default: one hidden layer each way, a 2-D latent."""

    def __init__(self, hidden: int = 64, latent: int = 2):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784))

    def encode(self, x):                               # (B, 784) -> (B, 2), (B, 2)
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var

    def decode(self, z):                               # (..., 2) -> (..., 784) logits
        return self.decoder(z)


def binarise(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> (N, 784) float32 in {0, 1}: a pixel is on above 127."""
    return (images.reshape(len(images), -1) > 127).float()


@functools.cache
def default_model() -> tuple[TinyVAE, torch.Tensor, torch.Tensor]:
    """(model, the images shown (MAP_POINTS, 784), their labels), trained once, on the CPU."""
    from d2lcore.data import FashionMNIST

    data = FashionMNIST(download=False)
    train, _ = data.split("train")
    images, labels = data.split("val")
    x = binarise(train[:10_000])
    with toolkit.cpu_seeded(SEED):  # nn.Linear initialises from the global generator
        model = TinyVAE()
    g = toolkit.generator(SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(4):
        for index in torch.randperm(len(x), generator=g).split(100):
            batch = x[index]
            mu, log_var = model.encode(batch)
            z = mu + (0.5 * log_var).exp() * torch.randn(mu.shape, generator=g)
            reconstruction = F.binary_cross_entropy_with_logits(model.decode(z), batch, reduction="sum")
            kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum()
            optimizer.zero_grad()
            ((reconstruction + kl) / len(batch)).backward()
            optimizer.step()
    model.eval()
    return model, binarise(images[:MAP_POINTS]), labels[:MAP_POINTS]


@dataclass(frozen=True)
class Result:
    image: int
    x: np.ndarray              # (784,) the image, 0 or 1
    decoded: np.ndarray        # (784,) Bernoulli means decoded at the chosen z
    mu: np.ndarray             # (2,) mean of q(z | x)
    sd: np.ndarray             # (2,) its standard deviations
    z: np.ndarray              # (2,) the chosen latent point
    reconstruction: float      # E_q[-log p(x | z)], nats
    kl: float                  # KL(q || prior), nats, closed form
    kl_weight: float
    neg_elbo: float            # reconstruction + kl
    neg_elbo_mc: float         # -mean of the log weights (the same samples as the IWAE bound)
    neg_log_px: float          # -IWAE bound with SAMPLES samples: an estimate of -log p(x)
    point_reconstruction: float  # -log p(x | z) at the chosen z
    point_log_prior: float       # log p(z)
    point_log_q: float           # log q(z | x)
    latents: np.ndarray        # (N, 2) encoder means of the map's images
    labels: np.ndarray         # (N,)

    @property
    def weighted(self) -> float:
        return self.reconstruction + self.kl_weight * self.kl


def _gaussian_log_prob(z, mu, log_var):
    return -0.5 * (((z - mu) ** 2) / log_var.exp() + log_var + LOG_2PI).sum(-1)


def _compute(model, images: torch.Tensor, labels: torch.Tensor, **params) -> Result:
    p = validate(CONTROLS, params)
    device = next(model.parameters()).device
    x = images[p["image"]].to(device)[None]                                # (1, 784)
    g = toolkit.generator(SEED)
    with torch.no_grad():
        mu, log_var = (t.double() for t in model.encode(x))                # (1, 2) each
        eps = torch.randn(SAMPLES, 2, generator=g, dtype=torch.float64).to(device)
        z = mu + (0.5 * log_var).exp() * eps                               # (S, 2)
        xs = x.double().expand(SAMPLES, -1)

        def log_lik(zs, target):
            return -F.binary_cross_entropy_with_logits(model.decode(zs.float()).double(), target,
                                                       reduction="none").sum(-1)

        log_px_z = log_lik(z, xs)                                          # (S,)
        log_w = log_px_z + _gaussian_log_prob(z, 0.0 * z, 0.0 * z) - _gaussian_log_prob(z, mu, log_var)
        kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum()
        point = torch.tensor([[p["z1"], p["z2"]]], dtype=torch.float64, device=device)
        decoded = torch.sigmoid(model.decode(point.float()))[0]
        latents = _latents(model, images)
        point_reconstruction = float(-log_lik(point, x.double())[0])
    reconstruction = float(-log_px_z.mean())
    return Result(
        image=p["image"], x=x[0].cpu().double().numpy(), decoded=decoded.cpu().double().numpy(),
        mu=mu[0].cpu().numpy(), sd=(0.5 * log_var[0]).exp().cpu().numpy(), z=point[0].cpu().numpy(),
        reconstruction=reconstruction, kl=float(kl), kl_weight=p["kl_weight"],
        neg_elbo=reconstruction + float(kl), neg_elbo_mc=float(-log_w.mean()),
        neg_log_px=float(-(torch.logsumexp(log_w, 0) - math.log(SAMPLES))),
        point_reconstruction=point_reconstruction,
        point_log_prior=float(_gaussian_log_prob(point, 0.0 * point, 0.0 * point)[0]),
        point_log_q=float(_gaussian_log_prob(point, mu, log_var)[0]),
        latents=latents, labels=labels.cpu().numpy(),
    )


_LATENTS: dict[int, tuple[object, torch.Tensor, np.ndarray]] = {}


def _latents(model, images) -> np.ndarray:
    """Encoder means of the map's images, computed once per (model, images)."""
    key = id(model) ^ id(images)
    cached = _LATENTS.get(key)
    if cached is None or cached[0] is not model or cached[1] is not images:
        device = next(model.parameters()).device
        with torch.no_grad():
            mu, _ = model.encode(images.to(device))
        cached = _LATENTS[key] = (model, images, mu.cpu().double().numpy())
    return cached[2]


def compute(**params) -> Result:
    """The ELBO of the default tiny VAE for one of the first validation images."""
    model, images, labels = default_model()
    return _compute(model, images, labels, **params)


def draw(fig, r: Result) -> None:
    ax_b, ax_m, ax_i = panels(fig, 3, width_ratios=(1.1, 1.1, 1), left=0.07, wspace=0.35)
    names = ["reconstr.", "KL", "weighted\nKL", "-ELBO", "-log p(x)\n(IWAE)"]
    values = [r.reconstruction, r.kl, r.kl_weight * r.kl, r.neg_elbo, r.neg_log_px]
    colors = ["tab:blue", "tab:orange", "tab:orange", "tab:red", "0.4"]
    ax_b.bar(np.arange(5), values, color=colors)
    ax_b.set(xticks=np.arange(5), ylabel="nats", title=f"image {r.image}: -ELBO {r.neg_elbo:.1f}")
    ax_b.set_xticklabels(names, fontsize=7)
    ax_m.scatter(r.latents[:, 0], r.latents[:, 1], c=r.labels, cmap="tab10", s=2, alpha=0.4,
                 vmin=0, vmax=9, linewidths=0)
    angle = np.linspace(0, 2 * np.pi, 60)
    ax_m.plot(r.mu[0] + 2 * r.sd[0] * np.cos(angle), r.mu[1] + 2 * r.sd[1] * np.sin(angle), color="black")
    ax_m.plot(*r.z, "x", color="tab:red", markersize=8)
    ax_m.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), xlabel="z₁", ylabel="z₂",
             title="q(z | x) (2 sd) and the point z")
    ax_m.set_aspect("equal")
    pair = np.concatenate([r.x.reshape(28, 28), np.ones((28, 2)), r.decoded.reshape(28, 28)], axis=1)
    ax_i.imshow(pair, cmap="gray_r", vmin=0, vmax=1)
    ax_i.set(xticks=[], yticks=[], title=f"x and p(x | z) at z\n-log p(x | z) = {r.point_reconstruction:.1f}")


def readouts(r: Result) -> dict[str, str]:
    return {
        "reconstruction E_q[-log p(x | z)]": f"{r.reconstruction:.2f} nats ({SAMPLES} samples)",
        "KL(q(z | x) ‖ p(z))": f"{r.kl:.2f} nats (weighted: {r.kl_weight:.1f} × KL = {r.kl_weight * r.kl:.2f})",
        "-ELBO": f"{r.neg_elbo:.2f} nats (weighted objective {r.weighted:.2f})",
        "-log p(x), IWAE estimate": f"{r.neg_log_px:.2f} nats: the ELBO's gap is at least "
                                    f"{r.neg_elbo_mc - r.neg_log_px:.2f}",
        "q(z | x)": f"mean ({r.mu[0]:+.2f}, {r.mu[1]:+.2f}), sd ({r.sd[0]:.3f}, {r.sd[1]:.3f})",
        "at the point z": f"log p(x | z) + log p(z) - log q(z | x) = "
                          f"{-r.point_reconstruction + r.point_log_prior - r.point_log_q:.1f}",
    }


def explorer(model=None, images: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> Explorer:
    """The explorer for a trained 2-D VAE and (N, 784) binary images with their labels."""
    if model is None:
        return EXPLORER
    if images is None or labels is None:
        raise TypeError("explorer(model, images, labels): pass the images to show and their labels")
    if images.ndim != 2 or images.shape[1] != 784 or len(images) < IMAGES:
        raise ValueError(f"images must be (N, 784) with N >= {IMAGES}, got {tuple(images.shape)}")
    return Explorer("The ELBO of a VAE", CONTROLS, functools.partial(_compute, model, images, labels),
                    draw, readouts, frame_control="z1", figsize=(9.0, 3.2), frame_count=13)


EXPLORER = Explorer("W16 · The ELBO of a VAE", CONTROLS, compute, draw, readouts,
                    frame_control="z1", figsize=(9.0, 3.2), frame_count=13)


def show(model=None, images=None, labels=None, **params):
    """Display the explorer (for a trained VAE, or the default tiny one)."""
    return _show(explorer(model, images, labels), **params)
