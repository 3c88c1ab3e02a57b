"""helpers.sparsify: TEAL / WINA masks against plain torch, the numba kernel against the dense product, the
sparse Llama MLP against its masked dense form, bad sparsities, and models left unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.sparsify import kernels, sparse_mlp, thresholds as th


def _tiny_llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=72, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("s", [0.0, 0.25, 0.5, 0.9])
def test_kernel_equals_dense_product_of_the_masked_input(s):
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((203, 70), dtype=np.float32)  # 203 rows: not a multiple of four
    x = rng.standard_normal(203).astype(np.float32)
    t = th.threshold(torch.from_numpy(np.abs(x)), s)
    idx = kernels.kept_rows(x, t)
    expected = (x * (np.abs(x) > t)).astype(np.float64) @ rows.astype(np.float64)
    np.testing.assert_allclose(kernels.gather_matvec(rows, x, idx), expected, rtol=1e-4, atol=1e-4)
    assert abs(len(idx) / 203 - (1 - s)) < 0.01


def test_kernel_reads_only_kept_rows():
    rows = np.ones((8, 5), dtype=np.float32)
    rows[3] = np.nan  # a row outside idx must never be read
    y = kernels.gather_matvec(rows, np.ones(8, dtype=np.float32), np.array([0, 1, 2, 4, 5]))
    assert np.all(y == 5.0)


def test_kernel_rejects_a_transposed_view_and_bad_indices():
    rows = np.ones((4, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.gather_matvec(rows.T, np.ones(6, dtype=np.float32), np.array([0]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        kernels.gather_matvec(rows, np.ones(4, dtype=np.float32), np.array([4]))


def test_teal_and_wina_scores_by_hand():
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 10.0, 0.0]])    # column norms 1, 10, 0
    x = torch.tensor([[2.0, 0.5, 3.0]])
    assert th.topk_mask(th.scores(x), 2 / 3).tolist() == [[False, False, True]]               # TEAL: largest |x|
    assert th.topk_mask(th.scores(x, th.column_norms(w)), 2 / 3).tolist() == [[False, True, False]]  # WINA
    assert th.relative_error(w, x, th.topk_mask(th.scores(x, th.column_norms(w)), 2 / 3)) < \
        th.relative_error(w, x, th.topk_mask(th.scores(x), 2 / 3))


def test_wina_is_optimal_when_columns_are_orthogonal():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(64, 64))
    w = q[:, :32] * torch.rand(32) * 5                       # orthogonal columns of unequal norms
    x = torch.randn(200, 32)
    for s in (0.25, 0.5, 0.75):
        keep_w = th.topk_mask(th.scores(x, th.column_norms(w)), s)
        keep_t = th.topk_mask(th.scores(x), s)
        err = lambda k: ((x * ~k) @ w.T).norm(dim=-1)
        assert (err(keep_w) <= err(keep_t) + 1e-5).all()
        exact = ((x * ~keep_w) ** 2 * th.column_norms(w) ** 2).sum(-1).sqrt()   # sum of dropped x_i^2 |W_i|^2
        torch.testing.assert_close(err(keep_w), exact, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.5", True])
def test_bad_sparsity_raises_before_any_forward(bad):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        th.calibrate(model, ["0", "2"], torch.randn(3, 4), bad, "teal")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        th.rules_topk(model, ["0"], bad, "wina")
    assert not calls


def test_bad_method_and_layer_raise():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with pytest.raises(ValueError, match="teal"):
        th.calibrate(model, ["0"], torch.randn(3, 4), 0.5, "magnitude")
    with pytest.raises(ValueError, match="not an nn.Linear"):
        th.rules_topk(model, ["1"], 0.5, "teal")


def test_calibrated_threshold_gives_the_sparsity_and_sparsified_matches_plain_torch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8))
    x = torch.randn(500, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rules = th.calibrate(model, ["0", "2"], x, 0.6, "wina")
    with torch.no_grad(), th.sparsified(model, rules) as seen:
        y = model(x)
    assert abs(seen["0"] - 0.6) < 0.01          # layer 2 was calibrated on dense inputs, so it is only close:
    assert abs(seen["2"] - 0.6) < 0.05
    with torch.no_grad():
        norm0, norm2 = model[0].weight.norm(dim=0), model[2].weight.norm(dim=0)
        h = model[1](model[0](x * ((x.abs() * norm0) > rules["0"].threshold)))
        expected = model[2](h * ((h.abs() * norm2) > rules["2"].threshold))
    torch.testing.assert_close(y, expected)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model[0]._forward_pre_hooks and not model[2]._forward_pre_hooks


def test_sparsified_removes_its_hooks_after_an_error():
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(RuntimeError):
        with th.sparsified(model, th.rules_topk(model, ["0"], 0.5, "teal")):
            model(torch.randn(2, 5))  # wrong width
    assert not model[0]._forward_pre_hooks


def test_sparse_mlp_matches_masked_dense_and_restores_the_model():
    model = _tiny_llama()
    names = [f"{n}.{p}" for n in sparse_mlp.llama_mlps(model) for p in ("gate_proj", "down_proj")]
    ids = torch.randint(0, 64, (1, 12))
    rules = th.calibrate(model, names, ids, 0.5, "teal")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        dense = model(ids).logits
        with th.sparsified(model, {**rules, **{n.replace("gate", "up"): r for n, r in rules.items() if "gate" in n}}):
            reference = model(ids).logits                     # the same masks by pre-hooks, dense products
        with sparse_mlp.sparse_mlps(model, rules) as fast:
            prompt = model(ids).logits                        # several tokens: masked dense path
            one = torch.stack([model(ids[:, : t + 1]).logits[0, -1] for t in range(12)])  # batch 1 decoding
            x = torch.randn(1, 1, 32)
            f = fast["model.layers.0.mlp"]
            torch.testing.assert_close(f(x), f.masked_dense(x), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(prompt, reference)
    assert (reference - dense).abs().max() > 1e-3                # the sparsity does change the output
    assert all("forward" not in m.__dict__ for m in sparse_mlp.llama_mlps(model).values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, dense)
    assert one.shape == (12, 64)


def test_sparse_mlps_checks_rules_before_changing_anything():
    model = _tiny_llama()
    with pytest.raises(ValueError, match="no rule"):
        with sparse_mlp.sparse_mlps(model, {}):
            pass
    topk = th.rules_topk(model, [f"{n}.{p}" for n in sparse_mlp.llama_mlps(model) for p in ("gate_proj", "down_proj")],
                         0.5, "teal")
    with pytest.raises(ValueError, match="thresholds"):
        with sparse_mlp.sparse_mlps(model, topk):
            pass
    assert all("forward" not in m.__dict__ for m in sparse_mlp.llama_mlps(model).values())
    with pytest.raises(ValueError, match="Llama"):
        with sparse_mlp.sparse_mlps(nn.Linear(2, 2), {}):
            pass


def test_time_matvec_reports_every_product_and_checks_the_kernel(monkeypatch):
    rows = np.random.default_rng(0).standard_normal((403, 64), dtype=np.float32)
    res = kernels.time_matvec(rows, [0.5, 0.9], repeats=2, blocks=2)
    assert [r["sparsity"] for r in res] == [0.5, 0.9]
    for r in res:
        assert r["ideal"] == pytest.approx(1 / (1 - r["sparsity"]))
        assert r["dense"] == min(r["torch"], r["kernel_all"]) > 0
        assert r["speedup"] == pytest.approx(r["dense"] / r["kernel"])
    broken = lambda rows, x, idx, out=None: np.zeros(rows.shape[1], np.float32)  # noqa: E731
    monkeypatch.setattr(kernels, "gather_matvec", broken)
    with pytest.raises(AssertionError, match="disagrees"):
        kernels.time_matvec(rows, [0.5], repeats=1)


def test_the_kernel_leaves_torch_threads_alone():
    before = torch.get_num_threads()
    kernels.gather_matvec(np.ones((8, 8), np.float32), np.ones(8, np.float32), np.arange(8))
    assert torch.get_num_threads() == before
    kernels.set_threads(2)
    try:
        rows = np.random.default_rng(0).standard_normal((50, 600), dtype=np.float32)
        x = np.ones(50, np.float32)
        np.testing.assert_allclose(kernels.gather_matvec(rows, x, np.arange(0, 50, 2)), x[::2] @ rows[::2], rtol=1e-4,
                                   atol=1e-4)
        assert torch.get_num_threads() == before
    finally:
        kernels.set_threads(1)
    with pytest.raises(ValueError, match="positive"):
        kernels.set_threads(0)


def test_gpt2_conv1d_is_a_linear_layer_with_its_weight_transposed():
    from transformers.pytorch_utils import Conv1D

    conv = Conv1D(3, 5)                                    # y = x @ weight + bias, weight (in=5, out=3)
    lin = nn.Linear(5, 3)
    with torch.no_grad():
        lin.weight.copy_(conv.weight.T)
        lin.bias.copy_(conv.bias)
    x = torch.randn(7, 5)
    assert torch.allclose(conv(x), lin(x), atol=1e-6)
    assert torch.equal(th.weight_of(conv), lin.weight)
    model = nn.Sequential(conv)
    assert th.linear_names(model) == ["0"]
    rules = th.calibrate(model, ["0"], x, 0.4, "wina")
    assert torch.allclose(rules["0"].col_norm, th.column_norms(lin.weight))
    with th.sparsified(model, rules) as seen:
        model(x)
    assert 0 < seen["0"] < 1 and not model[0]._forward_pre_hooks
