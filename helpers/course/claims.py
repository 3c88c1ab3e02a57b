"""A lesson's claims: asserted on the model they were calibrated on, reported on any other model.

A lesson's figures (a probe beats its control by 0.2, a steering vector beats a random direction) are measured
on its default model. On a model the user brings, the same comparison is still worth seeing, but it is no
longer a fact the lesson can promise. So a lesson writes

    claims = Claims(strict=strict)
    claims.check("probe beats control", gap > 0.1, f"gap {gap:.3f}", on=lm)   # asserted if lm is the default
    claims.always("helpers equals by-hand", err < 1e-6, f"max error {err:.1e}")  # asserted on every model
    claims.summary()                                                            # last cell: what was checked

``check`` asserts when ``on.is_default`` (or ``strict=True``) and otherwise prints a ``REPORT`` line saying
whether the claim held. ``always`` is for what is true of any model: a from-scratch method equals ``helpers``
and the field's library, hooks are removed, the model is unchanged, CKA(X, X) = 1.

Example:
    >>> class M:  # anything with is_default and spec
    ...     is_default, spec = False, "random:gpt2"
    >>> claims = Claims()
    >>> claims.check("beats random", False, "0.01 vs 0.02", on=M())
    REPORT beats random: does not hold on random:gpt2 (calibrated on the default model) -- 0.01 vs 0.02
    False
    >>> claims.always("equal", True, "err 0")
    True
    >>> claims.counts()
    {'checked': 1, 'reported': 1, 'held': 1}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ClaimError(AssertionError):
    """A checked claim does not hold."""


@dataclass
class Claim:
    name: str
    held: bool
    detail: str
    model: str
    asserted: bool


class Claims:
    """Collects a lesson's claims; see the module docstring."""

    def __init__(self, strict: bool = False):
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be True or False; got {strict!r}.")
        self.strict = strict
        self.items: list[Claim] = []

    def check(self, name: str, ok: Any, detail: str = "", *, on: Any) -> bool:
        """A calibrated claim about model ``on``: asserted if ``on.is_default`` or strict, else reported."""
        if not hasattr(on, "is_default"):
            raise TypeError(f"on= must be the model the claim is about (from helpers.zoo.open_model); "
                            f"got {type(on).__name__}.")
        return self._record(name, bool(ok), detail, getattr(on, "spec", "?"), bool(on.is_default) or self.strict)

    def always(self, name: str, ok: Any, detail: str = "", on: Any = None) -> bool:
        """A claim that holds for any model: always asserted."""
        return self._record(name, bool(ok), detail, getattr(on, "spec", "any model"), True)

    def _record(self, name: str, held: bool, detail: str, model: str, asserted: bool) -> bool:
        self.items.append(Claim(name, held, detail, model, asserted))
        if asserted and not held:
            raise ClaimError(f"Claim {name!r} does not hold on {model}: {detail}")
        if not asserted:
            verdict = "holds" if held else "does not hold"
            print(f"REPORT {name}: {verdict} on {model} (calibrated on the default model)"
                  + (f" -- {detail}" if detail else ""))
        return held

    def counts(self) -> dict[str, int]:
        return {"checked": sum(c.asserted for c in self.items), "reported": sum(not c.asserted for c in self.items),
                "held": sum(c.held for c in self.items)}

    def summary(self) -> str:
        """Print (and return) a table of every claim: checked or only reported, and whether it held."""
        lines = ["| claim | model | | held |", "|---|---|---|---|"]
        for c in self.items:
            lines.append(f"| {c.name} | {c.model} | {'checked' if c.asserted else 'reported'} | "
                         f"{'yes' if c.held else 'NO'} |")
        n = self.counts()
        text = "\n".join(lines)
        print(text)
        print(f"{n['checked']} claims checked (asserted), {n['reported']} only reported "
              f"(calibrated on the default model; strict=True asserts them); {n['held']} of {len(self.items)} held.")
        for key, value in n.items():
            print(f"KEY claims_{key}={value}")
        return text
