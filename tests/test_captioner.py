"""wild-captioner: captioned data, the model, the training script (a few steps), the committed weights' recorded
held-out caption accuracy; token activation maps (helpers.explain.token_maps) against plain reference loops."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.data.captions import VOCAB, captioned_wild, decode, encode
from helpers.explain.token_maps import (caption_maps, check_word, least_squares_scale, rank_gaussian_filter,
                                        token_activation_maps)
from helpers.models.captioner import Captioner, CaptionerConfig, load_captioner

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "data" / "zoo"


def _train_script():
    if "train_captioner" not in sys.modules:
        spec = importlib.util.spec_from_file_location("train_captioner", ROOT / "zoo" / "train_captioner.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["train_captioner"] = module
        spec.loader.exec_module(module)
    return sys.modules["train_captioner"]


def test_captions_name_objects_left_to_right_with_their_masks():
    ds = captioned_wild(40, "test", seed=3)
    assert (ds.n_objects == 2).sum() == 20
    for i in range(len(ds)):
        words = ds.captions[i].split()
        assert decode(ds.tokens[i]) == ds.captions[i]
        assert VOCAB[int(ds.tokens[i, ds.word_pos[i, 0]])] == words[2]  # <bos> a tint CLASS
        if ds.n_objects[i] == 2:
            a, b = ds.masks[i, 0], ds.masks[i, 1]
            assert a.any() and b.any() and not (a & b).any()
            xs = torch.arange(64).float()
            cx = [(m.float().sum(0) * xs).sum() / m.sum() for m in (a, b)]
            assert cx[0] <= cx[1]
            assert words[3] == "and" and VOCAB[int(ds.tokens[i, ds.word_pos[i, 1]])] == words[6]
        else:
            assert not ds.masks[i, 1].any() and ds.word_pos[i, 1] == -1


def test_unknown_caption_words_are_refused():
    with pytest.raises(ValueError, match="trouser"):
        encode("a red trouser on a coffee photo")  # a held-out class: never in a caption


def test_captioner_is_causal_over_the_whole_sequence():
    model = Captioner(CaptionerConfig(vocab=VOCAB)).eval()
    img, tok = torch.rand(1, 3, 64, 64), encode("a red shirt on a coffee photo")[None, :6]
    full = model(img, tok)
    part = model(img, tok[:, :3])
    assert full.shape == (1, 64 + 6, len(VOCAB))
    assert torch.allclose(full[:, :64 + 3], part, atol=1e-5)  # later words never change earlier positions


def test_train_script_smoke_run(tmp_path):
    script = _train_script()
    threads = torch.get_num_threads()
    try:
        info = script.main(["--steps", "3", "--out", str(tmp_path), "--eval-n", "16", "--gate", "0"])
    finally:
        torch.set_num_threads(threads)
    model, sidecar = load_captioner(tmp_path / "wild-captioner.safetensors")  # checks the SHA-256
    assert sidecar["captions_seen"] == 3 * sidecar["train_config"]["batch"] and sidecar["sha256"] == info["sha256"]
    assert 0 <= sidecar["accuracy"]["word"] <= 1
    mil = script.main(["--steps", "2", "--out", str(tmp_path / "mil"), "--eval-n", "8", "--gate", "0", "--mil", "0.5"])
    torch.set_num_threads(threads)
    assert mil["train_config"]["mil"] == 0.5 and info["train_config"]["mil"] == 0.0
    with pytest.raises(SystemExit, match="gate"):  # weights failing the held-out gate are not written
        script.main(["--steps", "1", "--out", str(tmp_path / "no"), "--eval-n", "8", "--gate", "1.01"])
    torch.set_num_threads(threads)
    assert not (tmp_path / "no").exists()


def test_committed_weights_reproduce_recorded_accuracy():
    script = _train_script()
    model, info = load_captioner(ZOO / "wild-captioner.safetensors")
    assert (ZOO / info["weights"]).stat().st_size < 5e6
    ds = captioned_wild(info["eval"]["n"], "test", info["eval"]["seed"])
    acc = script.caption_accuracy(model, ds.images, ds.tokens)
    assert abs(acc["word"] - info["accuracy"]["word"]) <= 0.01, (acc, info["accuracy"])
    assert abs(acc["exact"] - info["accuracy"]["exact"]) <= 0.01, (acc, info["accuracy"])
    assert info["accuracy"]["word"] >= info["gate"]["word"]


def _rgf_reference(img: np.ndarray, k: int = 3) -> np.ndarray:
    """The filter written as a plain loop over windows."""
    out, p = np.zeros_like(img), k // 2
    padded = np.pad(img, p, mode="reflect")
    ranks = np.arange(k * k) - (k * k) // 2
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            win = np.sort(padded[i:i + k, j:j + k].ravel())
            if win.mean() > 0:
                sigma = win.std() / win.mean()
                g = np.exp(-ranks ** 2 / (2 * sigma ** 2))
                out[i, j] = (win * g).sum() / g.sum()
    return out


def test_rank_gaussian_filter_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    img = np.maximum(rng.normal(size=(8, 8)), 0).astype(np.float64) + 0.01
    ours = rank_gaussian_filter(torch.tensor(img, dtype=torch.float64)).numpy()
    assert np.allclose(ours, _rgf_reference(img), atol=1e-5)


def test_eci_removes_an_earlier_words_map():
    torch.manual_seed(0)
    V, n_vis = 6, 4
    first = torch.tensor([5.0, 0.0, 0.0, 0.0])  # word 1 ("a") lights up position 0
    second = torch.tensor([0.0, 0.0, 0.0, 3.0])  # word 2's own evidence is at position 3
    logits = torch.full((n_vis + 3, V), -1.0)
    logits[:n_vis, 3] = first
    logits[:n_vis, 4] = second + 0.5 * first  # word 2's map carries some of word 1's activation
    logits[n_vis + 1, 4] = 2.0  # word 2 scores at word 1's position, so word 1 weighs in the interference
    tokens = torch.tensor([1, 3, 4])
    with_eci = token_activation_maps(logits, tokens, n_vis, (2, 2), explain=[2])
    without = token_activation_maps(logits, tokens, n_vis, (2, 2), explain=[2], eci=False)
    assert torch.allclose(without.corrected.flatten(), second + 0.5 * first)
    assert with_eci.corrected.flatten()[0] < 1e-6 < with_eci.corrected.flatten()[3]
    assert with_eci.scales[0] == pytest.approx(least_squares_scale(second + 0.5 * first, first))


def test_eci_correct_weights_the_earlier_maps_and_fits_one_scale():
    from helpers.explain.token_maps import eci_correct

    earlier = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    current = torch.tensor([3.0, 1.0, 2.0])  # 3x word 0's map (weight 3/4) + 1x word 1's (weight 1/4) + own evidence
    fixed, lam = eci_correct(current, earlier, torch.tensor([3.0, 1.0]))
    assert lam == pytest.approx(4.0, rel=1e-6)  # interference (0.75, 0.25, 0) fits current at scale 4
    assert torch.allclose(fixed, torch.tensor([0.0, 0.0, 2.0]), atol=1e-5)
    unweighted, _ = eci_correct(current, earlier, torch.tensor([1.0, 1.0]))
    assert not torch.allclose(unweighted, fixed)  # the text scores matter


def test_refused_word_names_close_matches():
    with pytest.raises(ValueError, match=r"never emits 'sneakers'.*'sneaker'"):
        check_word("sneakers", VOCAB)
    with pytest.raises(ValueError, match="never emits '<bos>'"):
        check_word("<bos>", VOCAB)
    assert VOCAB[check_word("sneaker", VOCAB)] == "sneaker"


def test_caption_maps_shapes_and_bad_input():
    model = Captioner(CaptionerConfig(vocab=VOCAB)).eval()
    tm = caption_maps(model, torch.rand(3, 64, 64), encode("a red shirt on a coffee photo"))
    assert tm.maps.shape == (8, 8, 8) and tm.explained == list(range(1, 9))  # 7 words and <eos>
    with pytest.raises(ValueError, match="grid"):
        token_activation_maps(torch.randn(7, 5), torch.tensor([1, 2, 3]), 4, (3, 3))
