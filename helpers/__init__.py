"""activation-lab helpers: capture, edit and stream activations; run and check the curriculum.

    import helpers
    device = helpers.setup(device="auto", seed=0)
    with helpers.capture(model, "blocks.*") as acts:
        model(x)
    model, info = helpers.zoo.load("wild-cnn")   # the zoo and datasets are submodules: helpers.zoo, helpers.data
"""
from helpers import data, zoo
from helpers.capture import Activations, ModifiedInPlaceError, capture
from helpers.edit import ablate, add_vector, edit, patch_from, replace_with
from helpers.extract import ActivationStore, extract
from helpers.listing import LayerInfo, layers
from helpers.memory import CaptureTooLargeError
from helpers.names import LayerNotFoundError, resolve_layers
from helpers.runtime import pick_device, setup

__all__ = [
    "Activations", "ActivationStore", "CaptureTooLargeError", "LayerInfo", "LayerNotFoundError",
    "ModifiedInPlaceError", "ablate", "add_vector", "capture", "edit", "extract", "layers",
    "patch_from", "pick_device", "replace_with", "resolve_layers", "setup", "data", "zoo",
]
