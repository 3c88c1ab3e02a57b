"""The model classes of the project's own models, and the one weight format (:mod:`helpers.models.io`).

Example:
    >>> import torch
    >>> from helpers import models
    >>> models.WildCNN(models.WildCNNConfig(n_classes=3))(torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 3])
"""
from helpers.models.captioner import Captioner, CaptionerConfig
from helpers.models.cnn import WildCNN, WildCNNConfig
from helpers.models.generator import GeneratorConfig, WildGenerator
from helpers.models.gpt import GPT, GPTConfig
from helpers.models.io import load_weights, save_weights

__all__ = ["Captioner", "CaptionerConfig", "GPT", "GPTConfig", "GeneratorConfig", "WildCNN", "WildCNNConfig", "WildGenerator", "load_weights",
           "save_weights"]
