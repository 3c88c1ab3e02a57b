"""helpers.intervene.prompt_pairs: pairs kept only when they line up; head projections found in real architectures;
attribution patching and layer IG work on Hugging Face decoders (outputs unwrapped)."""
import pytest
import torch

import helpers
from helpers import zoo
from helpers.data.tinyworld import ioi_prompts
from helpers.intervene import attribution, patching, prompt_pairs


class Words:
    """A word-level stand-in for a TextModel."""
    vocab = "<bos> when ann and bob met , waved to cat dan eve".split()

    def encode(self, text):
        return [0] + [self.vocab.index(w) for w in text.split()]

    def word_id(self, word):
        return self.vocab.index(word)


def test_token_pairs_keeps_only_pairs_that_line_up():
    pairs = [("when ann and bob met , bob waved to", "when ann and bob met , cat waved to", "ann", "bob"),
             ("when eve and bob met , bob waved to", "when eve and bob met , dan waved to", "eve", "bob"),
             ("when ann and bob met , bob waved to", "when ann and bob met , cat cat waved to", "ann", "bob"),  # longer
             ("when ann and bob met , bob waved to", "when cat and bob met , bob waved to", "ann", "bob"),  # elsewhere
             ("when ann and bob met , bob waved to", "when ann and bob met , cat waved to", "bob", "bob")]  # same word
    b = prompt_pairs.token_pairs(Words(), pairs)
    assert b.kept == [0, 1] and b.changed == [7] and b.offered == 5
    assert (b.clean != b.corrupt).sum(1).tolist() == [1, 1]
    assert prompt_pairs.token_pairs(Words(), pairs, n=1).kept == [0]
    with pytest.raises(ValueError, match="Only 2 of 5 pairs line up"):
        prompt_pairs.token_pairs(Words(), pairs, at_least=3)
    with pytest.raises(ValueError, match="None of the 1 pairs"):
        prompt_pairs.token_pairs(Words(), pairs[4:])


def test_read_pairs_refuses_bad_lines(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a b | a c | x | y\nonly two | fields\n")
    with pytest.raises(ValueError, match="line 2"):
        prompt_pairs.read_pairs(str(f))
    with pytest.raises(FileNotFoundError):
        prompt_pairs.read_pairs(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("spec,proj", [("tinyworld-gpt", "blocks.0.attn.proj"),
                                       ("random:gpt2", "transformer.h.0.attn.c_proj"),
                                       ("random:llama", "model.layers.0.self_attn.o_proj")])
def test_heads_and_gradients_on_real_architectures(spec, proj):
    lm = zoo.open_model(spec, kinds=("text",), default="tinyworld-gpt", device="cpu")
    names, width = prompt_pairs.head_outputs(lm)
    assert names[0] == proj and width * lm.n_heads == lm.d_model and len(names) == lm.n_layers
    b = prompt_pairs.token_pairs(lm, prompt_pairs.ioi_pairs(ioi_prompts(12, seed=1)), n=3)
    metric = patching.logit_diff(b.answer, b.wrong)
    layers = [lm.embed] + lm.blocks[:-1]
    exact = patching.residual_sweep(lm.model, b.clean, b.corrupt, metric, layers=layers)
    atp = attribution.attribution_sweep(lm.model, b.clean, b.corrupt, metric, layers=layers)
    # both see nothing before the corrupted tokens (causal), and the same unpatched runs
    first = b.changed[0]
    assert exact.values[:, :first].eq(exact.corrupt).all() and atp.values[:, :first].eq(atp.corrupt).all()
    assert abs(exact.clean - atp.clean) < 1e-5 and abs(exact.corrupt - atp.corrupt) < 1e-5
    # patching the whole stream entering block 1 restores the clean run exactly; layer IG sums to that gap
    with torch.no_grad(), helpers.capture(lm.model, [layers[1]]) as c:
        lm.logits(b.clean)
    with torch.no_grad(), helpers.capture(lm.model, [layers[1]]) as r:
        lm.logits(b.corrupt)
    ig = attribution.layer_integrated_gradients(lm.model, b.clean, layers[1], r[layers[1]], c[layers[1]], metric,
                                                steps=32)
    assert abs(ig.sum().item() - (exact.clean - exact.corrupt)) < 0.05 * abs(exact.clean - exact.corrupt) + 1e-3
