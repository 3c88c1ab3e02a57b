"""``python -m helpers.zoo``: list the zoo; ``python -m helpers.zoo prepare``: build caches once.

``prepare`` converts SmolLM2's GGUF file into the safetensors cache (1-2 min, once per machine),
so that notebooks only load (about 2 s). `make setup` runs it.
"""
from __future__ import annotations

import sys
import time

from helpers.zoo import available, pretrained


def main(argv: list[str]) -> int:
    if argv[:1] == ["prepare"]:
        cache = pretrained.smollm2_cache()
        if (cache / "activation-lab.json").exists():
            print(f"zoo caches ready ({cache})")
            return 0
        t0 = time.perf_counter()
        pretrained.load_smollm2()
        print(f"converted SmolLM2-135M into {cache} in {time.perf_counter() - t0:.0f} s")
        return 0
    if argv:
        print(f"unknown command {argv[0]!r}; use `python -m helpers.zoo` or `python -m helpers.zoo prepare`",
              file=sys.stderr)
        return 2
    width = max(len(n) for n in available())
    for name, summary in available().items():
        print(f"{name:<{width}}  {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
