"""Low-rank compression: whitening roots, the output-error identity, rank budgets, RMT projection, bad input."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.compress import lowrank, ranks, rmt
from helpers.ops import whitening


def _data(seed: int = 0, n: int = 400, d_in: int = 12, d_out: int = 9):
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(1, -2, d_in, dtype=torch.float64)                 # very unequal input directions
    mix = torch.linalg.qr(torch.randn(d_in, d_in, generator=g, dtype=torch.float64))[0]
    x = (torch.randn(n, d_in, generator=g, dtype=torch.float64) * scales) @ mix.T + 0.5
    w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    return x, w


def test_roots_square_to_the_gram():
    x, _ = _data()
    g = x.T @ x
    chol = whitening.cholesky_root(g, jitter=0.0)
    assert torch.allclose(chol @ chol.T, g) and torch.equal(chol, chol.tril())
    s = whitening.psd_sqrt(g)
    assert torch.allclose(s @ s, g, rtol=1e-8, atol=1e-8) and torch.allclose(s, s.T)


def test_cholesky_root_damps_a_singular_gram():
    x = torch.randn(3, 6, dtype=torch.float64)                                  # rank 3 in 6 dimensions
    chol = whitening.cholesky_root(x.T @ x, jitter=1e-8)
    assert torch.isfinite(chol).all()


def test_gram_accumulates_like_one_product():
    x, _ = _data()
    gram = whitening.Gram.of(x[:150]).update(x[150:])
    assert gram.n == len(x)
    assert torch.allclose(gram.xx, x.T @ x) and torch.allclose(gram.abs_mean, x.abs().mean(0))
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    assert torch.allclose(gram.augmented(), xa.T @ xa)


def test_input_grams_match_captured_inputs():
    net = nn.Sequential(nn.Linear(5, 7), nn.GELU(), nn.Linear(7, 3))
    xs = [torch.randn(10, 5), torch.randn(6, 5)]
    grams = whitening.input_grams(net, ["0", "2"], xs)
    hidden = torch.cat([net[1](net[0](x)) for x in xs]).detach().double()
    assert torch.allclose(grams["2"].xx, hidden.T @ hidden, atol=1e-9)
    assert grams["0"].n == 16


@pytest.mark.parametrize("method", ["cholesky", "sqrt"])
@pytest.mark.parametrize("rank", [1, 4, 8])
def test_whitened_error_is_the_dropped_spectrum(method, rank):
    x, w = _data()
    gram = whitening.Gram.of(x)
    f = lowrank.factorize(w, rank, method, gram, jitter=0.0)
    measured = ((w - f.weight()) @ x.T).pow(2).sum().item()                  # straight from the data
    assert measured == pytest.approx(f.dropped_energy(), rel=1e-6)
    assert measured == pytest.approx(lowrank.output_error(w, f.weight(), gram), rel=1e-9)


def test_whitened_is_optimal_and_beats_weight_svd_and_asvd():
    x, w = _data()
    gram = whitening.Gram.of(x)
    err = {m: lowrank.output_error(w, lowrank.factorize(w, 4, m, gram).weight(), gram) for m in lowrank.METHODS}
    assert err["cholesky"] == pytest.approx(err["sqrt"], rel=1e-5)
    assert err["cholesky"] < 0.5 * err["svd"] and err["cholesky"] <= err["asvd"]
    # and no other rank-4 matrix does better: random perturbations of the optimum only add error
    best = lowrank.factorize(w, 4, "sqrt", gram, jitter=0.0)
    for k in range(5):
        g = torch.Generator().manual_seed(k)
        other = (best.left + 1e-3 * torch.randn(best.left.shape, generator=g, dtype=torch.float64)) @ best.right
        assert lowrank.output_error(w, other, gram) > lowrank.output_error(w, best.weight(), gram)


def test_weight_svd_is_eckart_young():
    _, w = _data()
    f = lowrank.factorize(w, 3, "svd")
    s = torch.linalg.svdvals(w)
    assert (w - f.weight()).pow(2).sum().item() == pytest.approx(s[3:].pow(2).sum().item(), rel=1e-9)


def test_rank_larger_than_the_matrix_raises_naming_both():
    _, w = _data()
    with pytest.raises(ValueError, match=r"rank 10 .* 9 x 12: .* min\(9, 12\) = 9"):
        lowrank.factorize(w, 10, "svd")
    with pytest.raises(ValueError, match="rank 0"):
        lowrank.factorize(w, 0, "svd")
    with pytest.raises(ValueError, match="choose one of"):
        lowrank.factorize(w, 2, "qr")
    with pytest.raises(ValueError, match="needs the layer's input statistics"):
        lowrank.factorize(w, 2, "cholesky")


def test_replace_linears_keeps_the_original_and_matches_the_factors():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, _ = _data()
    gram = whitening.input_grams(net, ["0"], [x.float()])["0"]
    f = lowrank.factorize(net[0].weight, 3, "cholesky", gram)
    small = lowrank.replace_linears(net, {"0": f})
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())   # original unchanged
    assert isinstance(net[0], nn.Linear) and isinstance(small[0], lowrank.LowRankLinear) and small[0].rank == 3
    xf = x.float()[:5]
    expected = torch.relu(xf @ f.weight().float().T + net[0].bias)
    assert torch.allclose(small[1](small[0](xf)), expected, atol=1e-4)
    assert lowrank.parameter_bytes(small) < lowrank.parameter_bytes(net)
    with pytest.raises(ValueError, match="not an nn.Linear"):
        lowrank.replace_linears(net, {"1": f})
    with pytest.raises(ValueError, match="make a 9 x 12 matrix"):
        lowrank.replace_linears(net, {"2": f})


def test_uniform_and_care_ranks_spend_the_budget():
    spectra = {"a": torch.tensor([10.0, 1, 0.1, 0.01]), "b": torch.tensor([1.0, 1, 1, 1]), "c": torch.ones(4)}
    assert ranks.uniform_ranks(spectra, 7) == {"a": 3, "b": 2, "c": 2}
    care = ranks.care_ranks(spectra, 7)
    assert sum(care.values()) == 7 and all(1 <= r <= 4 for r in care.values())
    # a layer whose energy is all in its first direction gets nothing more while others still miss energy
    assert ranks.care_ranks({"a": torch.tensor([1.0, 0, 0]), "b": torch.tensor([1.0, 1, 1])}, 4) == {"a": 1, "b": 3}
    # the depth factor favours the earlier of two identical layers
    same = {"early": torch.tensor([1.0, 0.8, 0.6]), "late": torch.tensor([1.0, 0.8, 0.6])}
    r = ranks.care_ranks(same, 3, depth={"early": 0, "late": 1})
    assert r == {"early": 2, "late": 1}
    with pytest.raises(ValueError, match="between 3 .* and 12"):
        ranks.care_ranks(spectra, 13)
    with pytest.raises(ValueError, match="no block index"):
        ranks.care_ranks(spectra, 5, depth={"a": 0})


def test_outlier_directions_find_planted_spikes_and_project_exactly():
    g = torch.Generator().manual_seed(1)
    basis = torch.linalg.qr(torch.randn(40, 3, generator=g, dtype=torch.float64))[0]
    h = torch.randn(5000, 40, generator=g, dtype=torch.float64) + (torch.randn(5000, 3, generator=g, dtype=torch.float64) * 4) @ basis.T + 2.0
    found = rmt.outlier_directions(h)
    assert found.basis.shape == (40, 3)
    overlap = torch.linalg.svdvals(found.basis.T @ basis)                    # cosines of principal angles
    assert overlap.min() > 0.95
    assert rmt.outlier_directions(h, margin=2).basis.shape[1] == 5
    lin = nn.Linear(40, 6).double()
    f = rmt.projected_linear(lin, found)
    projected = found.mean + (h - found.mean) @ found.basis @ found.basis.T
    assert torch.allclose(h[:10] @ f.weight().T + f.bias, lin(projected[:10]), atol=1e-9)
    with pytest.raises(ValueError, match="40 dimensions but the layer has 7 inputs"):
        rmt.projected_linear(nn.Linear(7, 2), found)


def test_replace_linears_reads_a_conv1d_as_out_by_in():
    # transformers' Conv1D (GPT-2's linear maps) stores its weight as (in, out); at full rank nothing changes
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    net = nn.Sequential(Conv1D(5, 3), nn.ReLU())                       # 3 -> 5
    w = lowrank.linear_weight(net[0])
    assert w.shape == (5, 3) and lowrank.is_linear(net[0]) and not lowrank.is_linear(net[1])
    small = lowrank.replace_linears(net, {"0": lowrank.factorize(w, 3)})
    x = torch.randn(4, 3)
    assert torch.allclose(small(x), net(x), atol=1e-5)
    low = lowrank.replace_linears(net, {"0": lowrank.factorize(w, 1)})
    assert not torch.allclose(low(x), net(x), atol=1e-3)
    with pytest.raises(ValueError, match="not a linear map"):
        lowrank.linear_weight(net[1])
