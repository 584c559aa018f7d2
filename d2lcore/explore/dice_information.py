"""W7 Dice information lab: surprisal, entropy, cross-entropy and KL with two dice.

A true die p produces the rolls; a model die q scores them. Each face costs its surprisal
-log q(face) under the model. The average cost of a long run of rolls from p settles on the
cross-entropy H(p, q), the expected surprisal. It can never beat H(p), the surprisal you would
pay if the model were the truth; the gap is KL(p ‖ q). Swap which die is true and the gap
changes: KL is not symmetric.

Controls: the shape and the amount of loading of each die (loading 0 is a fair die), the unit
(nats or bits) and the number of rolls. Aha: cross-entropy is expected surprisal, KL is the
extra cost of the wrong model and is not a distance, and the running mean of the rolls follows
the law of large numbers to H(p, q).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import NullLocator, StrMethodFormatter

from d2lcore import likelihood
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

FACES = np.arange(1, 7)
MAX_ROLLS = 2000
# What a fully loaded die of each shape favours; the loading mixes it with a fair die.
SHAPES = {
    "loaded six": np.array([0, 0, 0, 0, 0, 1.0]),
    "loaded one": np.array([1.0, 0, 0, 0, 0, 0]),
    "low faces": np.array([6, 5, 4, 3, 2, 1.0]),
    "even faces": np.array([0, 1.0, 0, 1.0, 0, 1.0]),
}
# A loading below 1 keeps every face possible under both dice, so every surprisal is finite.
MAX_LOAD = 0.95

CONTROLS = (
    Choice("p_shape", "true die p", tuple(SHAPES), "loaded six"),
    Slider("p_load", "p: how loaded (0 = fair)", 0.0, MAX_LOAD, 0.05, 0.5),
    Choice("q_shape", "model die q", tuple(SHAPES), "low faces"),
    Slider("q_load", "q: how loaded (0 = fair)", 0.0, MAX_LOAD, 0.05, 0.3),
    Choice("units", "units", ("nats", "bits"), "nats"),
    Slider("n", "number of rolls n", 1, MAX_ROLLS, 1, 500, integer=True),
)

# One fixed stream of uniforms: the rolls are their inverse-CDF images under p, so moving any
# control other than n changes the same rolls smoothly instead of drawing new ones.
_UNIFORMS = np.random.default_rng(20240607).random(MAX_ROLLS)


@dataclass(frozen=True)
class Result:
    units: str
    p: np.ndarray               # the true die
    q: np.ndarray               # the model die
    surprisal: np.ndarray       # -log q(face), in units
    surprisal_p: np.ndarray     # -log p(face), in units
    entropy: float              # H(p), in units
    cross_entropy: float        # H(p, q), in units
    kl_pq: float                # KL(p ‖ q), in units
    kl_qp: float                # KL(q ‖ p), in units
    faces: np.ndarray           # the n simulated rolls from p (1..6)
    running_mean: np.ndarray    # mean surprisal under q of the first k rolls, k = 1..n
    surprisal_sd: float         # standard deviation of -log q(roll) for a roll from p, in units
    frequencies: np.ndarray     # share of each face among the n rolls

    @property
    def n(self) -> int:
        return len(self.faces)

    @property
    def standard_error(self) -> float:
        return self.surprisal_sd / np.sqrt(self.n)


def die(shape: str, load: float) -> np.ndarray:
    """A valid die for any control state: (1 - load) fair + load times the shape's favourites."""
    favourite = SHAPES[shape] / SHAPES[shape].sum()
    return (1 - load) * np.full(6, 1 / 6) + load * favourite


def compute(**params) -> Result:
    """Information quantities of the two dice and n seeded rolls of p scored by q (see CONTROLS)."""
    p = validate(CONTROLS, params)
    true, model = die(p["p_shape"], p["p_load"]), die(p["q_shape"], p["q_load"])
    per_unit = likelihood.NATS_PER_BIT if p["units"] == "bits" else 1.0  # every quantity below is nats / per_unit
    tp, tq = torch.from_numpy(true), torch.from_numpy(model)
    h_pq = float(likelihood.cross_entropy(tp, tq)) / per_unit
    surprisal = -np.log(model) / per_unit
    # Inverse CDF of p at the fixed uniforms; the clip guards a last cumulative sum of 1 - 1e-16.
    faces = np.minimum(np.searchsorted(np.cumsum(true), _UNIFORMS[:p["n"]], side="right"), 5)
    costs = surprisal[faces]
    return Result(
        units=p["units"], p=true, q=model, surprisal=surprisal, surprisal_p=-np.log(true) / per_unit,
        entropy=float(likelihood.entropy(tp)) / per_unit,
        cross_entropy=h_pq,
        kl_pq=float(likelihood.kl_divergence(tp, tq)) / per_unit,
        kl_qp=float(likelihood.kl_divergence(tq, tp)) / per_unit,
        faces=faces + 1,
        running_mean=np.cumsum(costs) / np.arange(1, p["n"] + 1),
        surprisal_sd=float(np.sqrt(np.sum(true * (surprisal - h_pq) ** 2))),
        frequencies=np.bincount(faces, minlength=6) / p["n"],
    )


def plotted_rolls(n: int) -> np.ndarray:
    """The roll counts k at which the running mean is drawn: every one up to 100, then log-spaced."""
    return np.unique(np.concatenate([np.arange(1, min(n, 100) + 1), np.geomspace(1, n, 150).round().astype(int)]))


def draw(fig, r: Result) -> None:
    ax_s, ax_r = panels(fig, 2, left=0.07, wspace=0.25)
    u = r.units
    # Each face is a bar as wide as its probability under p and as tall as its surprisal under q,
    # so the orange area is H(p, q); the blue steps are -log p, with area H(p).
    edges = np.concatenate([[0.0], np.cumsum(r.p)])
    ax_s.bar(edges[:-1], r.surprisal, r.p, align="edge", color="tab:orange", alpha=0.85,
             edgecolor="white", linewidth=0.8, label="-log q(face): area H(p,q)")
    ax_s.stairs(r.surprisal_p, edges, color="tab:blue", linewidth=1.5, label="-log p(face): area H(p)")
    ax_s.axhline(r.cross_entropy, color="black", linestyle="--", linewidth=1.2)
    ax_s.text(1.0, r.cross_entropy, f"H(p,q) = {r.cross_entropy:.3f}", fontsize=8, ha="right", va="bottom")
    wide = r.p >= 0.05  # label only faces wide enough to hold their number
    ax_s.set_xticks((edges[:-1] + r.p / 2)[wide], [str(f) for f in FACES[wide]])
    ax_s.set(xlim=(0, 1), ylim=(0, 1.25 * max(r.surprisal.max(), r.surprisal_p.max())),
             xlabel="faces, each as wide as its probability p(face)", ylabel=f"surprisal ({u})")
    ax_s.set_title(f"KL(p‖q) = {r.kl_pq:.3f},  KL(q‖p) = {r.kl_qp:.3f} {u}")
    ax_s.legend(fontsize=8, loc="upper left", ncols=2)
    ax_s.locator_params(axis="y", nbins=5)  # fewer ticks: tick labels are most of the drawing time

    # On a log axis the last thousand rolls share a few dozen pixels: about 250 log-spaced roll
    # counts draw the same picture at a fraction of the cost.
    k = plotted_rolls(r.n)
    band = 2 * r.surprisal_sd / np.sqrt(k)
    ax_r.fill_between(k, r.cross_entropy - band, r.cross_entropy + band, color="0.85", linewidth=0)
    ax_r.axhline(r.cross_entropy, color="black", linestyle="--", linewidth=1.2)
    ax_r.plot(k, r.running_mean[k - 1], color="tab:red", linewidth=1.3)
    ax_r.set_xscale("log")
    # Plain labels and no minor ticks: mathtext 10^k labels and ~30 minor ticks cost a third of an update.
    ax_r.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax_r.xaxis.set_minor_locator(NullLocator())
    ax_r.locator_params(axis="y", nbins=5)
    ax_r.set(xlim=(1, max(r.n, 10)), xlabel="rolls k (log scale)", ylabel=f"mean surprisal of k rolls ({u})",
             title=f"mean surprisal of {r.n} rolls of p under q")


def readouts(r: Result) -> dict[str, str]:
    u = r.units
    return {
        "entropy H(p)": f"{r.entropy:.4f} {u}",
        "cross-entropy H(p, q)": f"{r.cross_entropy:.4f} {u}",
        "KL(p ‖ q)": f"{r.kl_pq:.4f} {u}",
        "KL(q ‖ p)": f"{r.kl_qp:.4f} {u}",
        f"mean surprisal of {r.n} rolls": f"{r.running_mean[-1]:.4f} {u} (± {r.standard_error:.4f} s.e.)",
    }


EXPLORER = Explorer("W7 · Dice information lab", CONTROLS, compute, draw, readouts,
                    frame_control="n", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
