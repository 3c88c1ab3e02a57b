"""Open the model a lesson studies, whatever the user brings: ``helpers.zoo.open_model(spec, kinds, default)``.

A lesson's ``model`` parameter is a zoo name, ``torchvision:<name>``, ``hf:<id>`` or ``random:<arch>``.
:func:`open_model` loads it, checks that it is of a kind the lesson studies (raising, before the lesson does any
work, a message that names the kinds it accepts), and wraps it: a :class:`TextModel` (decoder LM) or an
:class:`ImageModel` (classifier) that names the parts a lesson needs, found from the architecture.

Example:
    >>> lm = open_model("random:llama", kinds=("text",), default="tinyworld-gpt", device="cpu")
    >>> lm.blocks[-1], lm.mlp_down[0], lm.final_norm, lm.is_default
    ('model.layers.3', 'model.layers.0.mlp.down_proj', 'model.norm', False)
    >>> open_model("random:resnet50", kinds=("text",), default="tinyworld-gpt")
    Traceback (most recent call last):
    ...
    helpers.zoo.adapter.WrongKindError: This lesson studies text models (decoder language models: tinyworld-gpt, smollm2-135m, hf:<id> of a causal LM, random:gpt2, random:llama); 'random:resnet50' is an image model.
"""
from __future__ import annotations

from typing import Sequence, Union

from torch import nn

from helpers.zoo.image_adapter import ImageModel
from helpers.zoo.info import ModelInfo
from helpers.zoo.text_adapter import TextModel, UnsupportedModelError, read_prompts

KINDS = {
    "text": "text models (decoder language models: tinyworld-gpt, smollm2-135m, hf:<id> of a causal LM, "
            "random:gpt2, random:llama)",
    "image": "image models (classifiers: wild-cnn, efficientnet-lite0, torchvision:<name> such as resnet50 or "
             "vit_b_16, random:resnet50, random:vit_b_16)",
}
# what a name says before anything is loaded (so a wrong kind fails at once)
NAMED_KINDS = {"tinyworld-gpt": "text", "tinyworld-gpt-relu": "text", "smollm2-135m": "text",
               "minilm": "sentence-encoder", "wild-cnn": "image", "wild-cnn-spurious": "image",
               "efficientnet-lite0": "image", "wild-generator": "image-generator",
               "wild-captioner": "image-captioning"}

AnyModel = Union[TextModel, ImageModel]


class WrongKindError(ValueError):
    """The model is not of a kind the lesson studies."""


def kind_of_spec(spec: str) -> str | None:
    """The kind a model spec names without loading it, or None when only loading tells (``hf:<id>``).

    Example:
        >>> kind_of_spec("random:vit_b_16"), kind_of_spec("torchvision:resnet50"), kind_of_spec("hf:gpt2")
        ('image', 'image', None)
    """
    from helpers.zoo.randoms import INPUT_SIZE

    if spec in NAMED_KINDS:
        return NAMED_KINDS[spec]
    if spec.startswith("torchvision:"):
        return "image"
    if spec.startswith("random:"):
        return "image" if spec[7:] in INPUT_SIZE else "text"
    return None


def kind_of_model(model: nn.Module, info: ModelInfo) -> str:
    """``"text"`` for a decoder LM, ``"image"`` for an image classifier, else a word for what it is."""
    from helpers.models.gpt import GPT

    if isinstance(model, GPT):
        return "text"
    if hasattr(model, "get_output_embeddings"):  # a Hugging Face model
        if model.get_output_embeddings() is not None:
            return "text"
        # Hugging Face image classifiers return output objects and their own preprocessing: not mapped here
        # (torchvision's ViTs and CNNs are); text encoders such as BERT have no unembedding
        return "Hugging Face image" if any(isinstance(m, nn.Conv2d) for m in model.modules()) else "sentence-encoder"
    if info.name in NAMED_KINDS:
        return NAMED_KINDS[info.name]
    return "image" if any(isinstance(m, nn.Conv2d) for m in model.modules()) else "unknown"


def _refuse(spec: str, kind: str, kinds: Sequence[str]) -> WrongKindError:
    accepted = " or ".join(KINDS[k] for k in kinds)
    return WrongKindError(f"This lesson studies {accepted}; {spec!r} is a{'n' if kind[0] in 'aeiou' else ''} "
                          f"{kind} model." + (" Use the torchvision build of the same architecture (torchvision:<name>)."
                                              if kind == "Hugging Face image" else ""))


def open_model(spec: str, kinds: Sequence[str] = ("text",), default: str = "", device: str = "auto") -> AnyModel:
    """Load ``spec`` (``""`` means ``default``) in eval mode and wrap it for a lesson that studies ``kinds``.

    Args:
        spec: a zoo name, ``torchvision:<name>``, ``hf:<id>`` or ``random:<arch>``.
        kinds: the kinds the lesson studies, from ``"text"`` and ``"image"``.
        default: the lesson's calibrated model; ``is_default`` tells whether ``spec`` is it.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Raises:
        WrongKindError: the model is of another kind (raised before loading when the name tells).
        UnsupportedModelError: the model is of the right kind but its parts cannot be found.
    """
    from helpers.zoo import load

    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"kinds must be taken from {sorted(KINDS)}; got {list(kinds)}.")
    if not isinstance(spec, str):
        raise TypeError(f"model must be a string (a zoo name, torchvision:<name>, hf:<id>, random:<arch>); "
                        f"got {type(spec).__name__}.")
    spec = spec.strip() or default
    if not spec:
        raise ValueError("No model given and no default: pass a zoo name, torchvision:<name>, hf:<id> or random:<arch>.")
    named = kind_of_spec(spec)
    if named is not None and named not in kinds:
        raise _refuse(spec, named, kinds)
    model, info = load(spec, device=device)
    kind = kind_of_model(model, info)
    if kind not in kinds:
        raise _refuse(spec, kind, kinds)
    wrapper = TextModel if kind == "text" else ImageModel
    return wrapper.wrap(model, info, spec=spec, is_default=(spec == default))


def open_models(spec: str, defaults: dict[str, str], device: str = "auto") -> dict[str, AnyModel]:
    """For lessons with a text and an image part: ``{"text": ..., "image": ...}``; ``spec`` replaces its kind's default.

    Example:
        >>> models = open_models("random:vit_b_16", {"text": "random:gpt2", "image": "wild-cnn"}, device="cpu")
        >>> models["image"].spec, models["image"].is_vit, models["text"].spec
        ('random:vit_b_16', True, 'random:gpt2')
    """
    kinds = tuple(defaults)
    spec = (spec or "").strip()
    chosen = None
    if spec:
        kind = kind_of_spec(spec)
        if kind is not None and kind not in kinds:
            raise _refuse(spec, kind, kinds)
        chosen = open_model(spec, kinds, device=device)
        chosen.is_default = spec == defaults[chosen.kind]
    return {k: chosen if chosen is not None and chosen.kind == k else open_model(d, (k,), default=d, device=device)
            for k, d in defaults.items()}


__all__ = ["AnyModel", "ImageModel", "KINDS", "TextModel", "UnsupportedModelError", "WrongKindError", "kind_of_model",
           "kind_of_spec", "open_model", "open_models", "read_prompts"]
