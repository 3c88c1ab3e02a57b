"""Models named ``torchvision:<name>`` or ``hf:<id>``, for users who have their weights.

Nothing is downloaded by the project; with ``pretrained=False`` the same classes are built with
random weights (that is how the tests run them offline).
"""
from __future__ import annotations

from torch import nn

from helpers.zoo.info import ModelInfo


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached on this machine nor downloadable."""


def load_torchvision(name: str, pretrained: bool = True) -> tuple[nn.Module, ModelInfo]:
    import torchvision

    valid = torchvision.models.list_models()
    if name not in valid:
        import difflib
        close = difflib.get_close_matches(name, valid, n=5)
        raise ValueError(f"torchvision has no model {name!r}." + (f" Close: {close}." if close else "")
                         + " See torchvision.models.list_models().")
    weights = None
    classes = None
    if pretrained:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        classes = list(weights.meta.get("categories", [])) or None
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except Exception as err:  # noqa: BLE001 - urllib/hub errors differ between versions
        raise WeightsUnavailableError(
            f"The pretrained weights of torchvision:{name} are not in torch's cache (~/.cache/torch/hub) "
            f"and could not be downloaded ({type(err).__name__}). Copy the weight file there, or use "
            f"pretrained=False for random weights.") from err
    layers = [n for n, _ in model.named_children()]
    preprocess = weights.transforms() if weights is not None else None
    return model, ModelInfo(f"torchvision:{name}", layers, preprocess, classes,
                            provenance={"source": "torchvision", "pretrained": pretrained,
                                        "weights": str(weights) if weights else "random"})


def load_hf(model_id: str, pretrained: bool = True) -> tuple[nn.Module, ModelInfo]:
    """A Hugging Face causal LM (or encoder) from the local cache; ``pretrained=False`` -> random weights.

    With random weights, ``model_id`` must be a model type transformers knows (``gpt2``, ``bert``, ...),
    because its config cannot be fetched.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    tokenizer = None
    if pretrained:
        try:
            model, tokenizer = _from_pretrained(model_id, local_files_only=True)
        except OSError:
            model = None
        try:  # not cached: try the hub, for users whose machine reaches it
            if model is None:
                model, tokenizer = _from_pretrained(model_id, local_files_only=False)
        except OSError as err:
            raise WeightsUnavailableError(
                f"hf:{model_id} is not in the Hugging Face cache of this machine and cannot be downloaded "
                f"here. Copy the model folder into the cache (or pass a local folder as the id), or use "
                f"pretrained=False for random weights of a known model type.") from err
    else:
        try:
            config = AutoConfig.for_model(model_id)
        except ValueError as err:
            raise ValueError(f"With pretrained=False, hf:{model_id} must name a model type transformers "
                             f"knows (e.g. 'gpt2', 'bert', 'llama'): {err}") from err
        cls = AutoModelForCausalLM if _is_causal(config) else AutoModel
        model = cls.from_config(config)
    layers = _block_names(model)
    return model, ModelInfo(f"hf:{model_id}", layers, None, tokenizer=tokenizer,
                            provenance={"source": "Hugging Face transformers", "pretrained": pretrained})


def _from_pretrained(model_id: str, local_files_only: bool):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(model_id, local_files_only=local_files_only)
    cls = AutoModelForCausalLM if _is_causal(config) else AutoModel
    model = cls.from_pretrained(model_id, local_files_only=local_files_only)
    return model, AutoTokenizer.from_pretrained(model_id, local_files_only=local_files_only)


def _is_causal(config) -> bool:
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING
    return type(config) in MODEL_FOR_CAUSAL_LM_MAPPING


def _block_names(model: nn.Module) -> list[str]:
    """The names of the repeated blocks (the children of the longest ModuleList)."""
    best: tuple[str, int] = ("", 0)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > best[1]:
            best = (name, len(module))
    return [f"{best[0]}.{i}" for i in range(best[1])]
