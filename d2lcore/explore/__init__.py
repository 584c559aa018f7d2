"""Explorers: move a control and watch a loss turn into a probability model.

Each module holds one explorer (pure ``compute``, ``draw``, ``readouts``) and a ``show()``;
``toolkit`` holds everything they share. In a notebook::

    from d2lcore import explore
    explore.noise_to_loss.show()                    # live, every control
    explore.noise_to_loss.show(frame="prediction")  # the book's static copy steps through this one
"""
from d2lcore.explore import (
    calibration_temperature,       # W18
    convolution_pooling,           # W14
    cross_entropy_decomposition,   # W6
    diffusion_steps,               # W17
    dice_information,              # W7
    dropout_noise,                 # W9
    huber_density,                 # W2
    likelihood_vs_mse,             # W3
    mc_dropout,                    # W10
    minibatch_gradient,            # W11
    next_token_sampling,           # W15
    noise_to_loss,                 # W1
    outlier_tug_of_war,            # W12
    predicted_distribution,        # W19
    sigmoid_losses,                # W5
    signal_through_depth,          # W13
    softmax_categorical,           # W4
    toolkit,
    vae_elbo,                      # W16
    weight_decay_prior,            # W8
)

__all__ = [
    "noise_to_loss", "huber_density", "likelihood_vs_mse", "softmax_categorical", "sigmoid_losses",
    "cross_entropy_decomposition", "dice_information", "weight_decay_prior", "minibatch_gradient",
    "outlier_tug_of_war",
    "signal_through_depth", "predicted_distribution",
    "convolution_pooling",
    "dropout_noise", "mc_dropout",
    "next_token_sampling", "vae_elbo", "diffusion_steps",
    "calibration_temperature",
    "toolkit",
]
