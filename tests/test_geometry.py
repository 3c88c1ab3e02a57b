"""Covariance, Marchenko-Pastur, CKA, partial correlations, DSE/DSMI: against numpy/scipy/sklearn and by-hand forms."""
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from helpers.core.extraction import extract
from helpers.geometry import diffusion
from helpers.ops import covariance, randmat, similarity


# ---------------------------------------------------------------------------------------------
# streaming covariance

def test_streaming_covariance_matches_numpy_cov_for_any_batching():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1001, 7)) * np.arange(1, 8) + 50.0     # large mean: the float32 two-sums trap
    ref = np.cov(x.T)
    for sizes in ([1001], [1, 500, 500], [3] * 333 + [2]):
        acc = covariance.StreamingCovariance()
        start = 0
        for s in sizes:
            acc.update(torch.from_numpy(x[start:start + s]))
            start += s
        assert acc.n == 1001
        np.testing.assert_allclose(acc.covariance().numpy(), ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(acc.mean.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(acc.covariance(ddof=0).numpy(), np.cov(x.T, ddof=0), rtol=1e-10)
    np.testing.assert_allclose(acc.correlation().numpy(), np.corrcoef(x.T), rtol=1e-10, atol=1e-12)


def test_streaming_covariance_float32_batches_stay_accurate_with_offset():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(20000, 16)) + 1000.0).astype(np.float32)
    ref = np.cov(x.astype(np.float64).T)
    got = covariance.covariance(torch.from_numpy(x), batch_size=512).covariance().numpy()
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-5


def test_covariance_reads_an_activation_store_in_chunks(tmp_path):
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh())
    batches = [torch.randn(40, 6) for _ in range(5)]
    store = extract(net, batches, "1", out=str(tmp_path), progress=False)
    acc = covariance.covariance(store, "1", batch_size=7)
    full = np.asarray(store.numpy("1"), dtype=np.float64)
    np.testing.assert_allclose(acc.covariance().numpy(), np.cov(full.T), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="layer"):
        covariance.covariance(store)
    with pytest.raises(KeyError, match="Layers"):
        covariance.covariance(store, "0")


def test_covariance_of_a_read_only_array_is_silent_and_exact():
    x = np.random.default_rng(9).normal(size=(300, 4))
    x.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc = covariance.covariance(x, batch_size=64)
    np.testing.assert_allclose(acc.covariance().numpy(), np.cov(x.T), rtol=1e-10)


def test_covariance_iterable_of_3d_batches_and_bad_shapes():
    xs = [torch.randn(4, 10, 3) for _ in range(3)]
    acc = covariance.covariance(iter(xs))
    np.testing.assert_allclose(acc.covariance().numpy(), np.cov(torch.cat(xs).reshape(-1, 3).double().numpy().T),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expected 3"):
        covariance.StreamingCovariance(3).update(torch.randn(5, 4))
    with pytest.raises(ValueError, match="rows"):
        covariance.StreamingCovariance().update(torch.randn(5))
    with pytest.raises(ValueError, match="more than 1 rows"):
        covariance.StreamingCovariance().update(torch.randn(1, 3)).covariance()


def test_fewer_samples_than_dimensions_warns_with_the_number_needed():
    with pytest.warns(UserWarning, match="at least 64 samples"):
        covariance.covariance(torch.randn(20, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        covariance.covariance(torch.randn(80, 64))       # enough: silent
    with pytest.warns(UserWarning, match="at least 30 samples"):
        randmat.fit_mp(np.ones(30), n=10)


# ---------------------------------------------------------------------------------------------
# partial correlations

def test_partial_correlations_equal_regression_residual_correlations():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 5)) @ rng.normal(size=(5, 5))
    pc = covariance.partial_correlations(torch.from_numpy(np.cov(x.T))).numpy()
    for i, j in [(0, 1), (2, 4), (1, 3)]:
        rest = [k for k in range(5) if k not in (i, j)]
        design = np.c_[np.ones(len(x)), x[:, rest]]
        ri = x[:, i] - design @ np.linalg.lstsq(design, x[:, i], rcond=None)[0]
        rj = x[:, j] - design @ np.linalg.lstsq(design, x[:, j], rcond=None)[0]
        assert abs(pc[i, j] - np.corrcoef(ri, rj)[0, 1]) < 1e-10
    assert np.allclose(np.diag(pc), 1)


def test_partial_correlations_singular_needs_ridge():
    c = torch.ones(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="ridge"):
        covariance.partial_correlations(c)
    assert torch.isfinite(covariance.partial_correlations(c, ridge=1e-3)).all()
    with pytest.raises(ValueError, match="square"):
        covariance.partial_correlations(torch.ones(2, 3))


# ---------------------------------------------------------------------------------------------
# Marchenko-Pastur, effective rank

def test_mp_density_cdf_and_median_against_scipy_quadrature():
    for gamma in (0.05, 0.3, 1.0):
        lo, hi = randmat.mp_edges(gamma, 2.0)
        dens = lambda t: randmat.mp_density(np.array([t]), gamma, 2.0)[0]
        assert abs(integrate.quad(dens, lo, hi, limit=200)[0] - 1) < 1e-6
        mid = lo + 0.37 * (hi - lo)
        assert abs(randmat.mp_cdf(np.array([mid]), gamma, 2.0)[0] - integrate.quad(dens, lo, mid, limit=200)[0]) < 1e-4
        med = randmat.mp_median(gamma)
        assert abs(integrate.quad(lambda t: randmat.mp_density(np.array([t]), gamma)[0], 0, med, limit=200)[0] - 0.5) < 1e-4
    with pytest.raises(ValueError, match="gamma"):
        randmat.mp_edges(1.5)


def test_fit_mp_recovers_noise_and_spikes_and_rejects_structure():
    rng = np.random.default_rng(3)
    n, p = 3000, 100
    noise = rng.normal(size=(n, p)) * 0.7
    ev = np.linalg.eigvalsh(np.cov(noise.T))
    fit = randmat.fit_mp(ev, n)
    assert abs(fit.sigma2 / 0.49 - 1) < 0.05 and fit.n_outliers == 0 and fit.ks < 0.06
    # against scipy's KS statistic on the same bulk
    ks_ref = stats.kstest(ev, lambda t: randmat.mp_cdf(t, p / n, fit.sigma2)).statistic
    assert abs(fit.ks - ks_ref) < 1e-3
    u = np.linalg.qr(rng.normal(size=(p, 4)))[0]
    spiked = noise + (rng.normal(size=(n, 4)) * np.array([3.0, 2.5, 2.0, 1.5])) @ u.T
    fit2 = randmat.fit_mp(np.linalg.eigvalsh(np.cov(spiked.T)), n)
    assert fit2.n_outliers == 4 and abs(fit2.sigma2 / 0.49 - 1) < 0.08
    shuffled = randmat.shuffle_columns(torch.from_numpy(spiked), seed=0).numpy()
    assert randmat.fit_mp(np.linalg.eigvalsh(np.corrcoef(shuffled.T)), n).n_outliers == 0   # standardised


def test_shuffle_columns_keeps_each_column_and_breaks_correlation():
    x = torch.randn(500, 1).repeat(1, 3)
    s = randmat.shuffle_columns(x, seed=1)
    assert torch.equal(s.sort(0).values, x.sort(0).values)
    assert abs(np.corrcoef(s.numpy().T)[0, 1]) < 0.2


def test_effective_rank_against_scipy_entropy():
    ev = np.array([4.0, 2.0, 1.0, 1.0, 0.0])
    assert abs(randmat.effective_rank(ev) - np.exp(stats.entropy(ev / ev.sum()))) < 1e-12
    assert randmat.effective_rank(torch.ones(10)) == pytest.approx(10)
    with pytest.raises(ValueError):
        randmat.effective_rank(np.zeros(3))


# ---------------------------------------------------------------------------------------------
# CKA

def _cka_gram_numpy(x, y):
    n = len(x)
    h = np.eye(n) - 1.0 / n
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    return np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_))


def test_linear_cka_equals_gram_form_and_invariances():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 20))
    y = np.tanh(x @ rng.normal(size=(20, 12))) + 0.3 * rng.normal(size=(300, 12))
    ref = _cka_gram_numpy(x, y)
    assert abs(similarity.linear_cka(torch.from_numpy(x), torch.from_numpy(y), chunk=37) - ref) < 1e-10
    assert abs(similarity.linear_cka(torch.from_numpy(x).float(), torch.from_numpy(y).float()) - ref) < 1e-5
    q = np.linalg.qr(rng.normal(size=(20, 20)))[0]
    assert abs(similarity.linear_cka(torch.from_numpy(2.5 * x @ q - 7), torch.from_numpy(y)) - ref) < 1e-10
    assert abs(similarity.linear_cka(torch.from_numpy(x * np.arange(1, 21)), torch.from_numpy(y)) - ref) > 1e-3
    m = similarity.cka_matrix([torch.from_numpy(x), torch.from_numpy(y)])
    assert m.shape == (2, 2) and m[0, 0] == 1 and abs(m[0, 1] - ref) < 1e-10 and m[0, 1] == m[1, 0]


def test_linear_cka_bad_input_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(10, 4\).*\(9, 4\)"):
        similarity.linear_cka(torch.randn(10, 4), torch.randn(9, 4))
    with pytest.raises(ValueError, match="constant"):
        similarity.linear_cka(torch.ones(10, 4), torch.randn(10, 4))
    with pytest.raises(ValueError, match="one row per input"):
        similarity.linear_cka(torch.randn(10), torch.randn(10))


# ---------------------------------------------------------------------------------------------
# diffusion spectral entropy / mutual information

def test_dse_matches_the_random_walk_matrix_by_numpy():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 6))
    sigma, t = 1.3, 3
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    p_walk = np.exp(-d2 / (2 * sigma ** 2))
    p_walk /= p_walk.sum(1, keepdims=True)
    lam = np.abs(np.linalg.eigvals(p_walk)) ** t
    p = lam / lam.sum()
    ref = -(p * np.log2(p)).sum()
    assert abs(diffusion.diffusion_spectral_entropy(torch.from_numpy(x), sigma, t) - ref) < 1e-8
    # one tight cluster -> about 0 bits; far-apart points -> log2(n)
    assert diffusion.diffusion_spectral_entropy(torch.zeros(50, 3), 1.0, 1) < 1e-6
    assert abs(diffusion.diffusion_spectral_entropy(torch.eye(16) * 100, 1.0, 1) - 4) < 1e-6
    with pytest.raises(ValueError, match="sigma"):
        diffusion.diffusion_spectral_entropy(torch.from_numpy(x), 0.0, 1)


def test_dsmi_high_for_informative_labels_zero_for_random():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.randn(300, 5, generator=g) * 0.2 + torch.eye(5)[y] * 4
    informative = diffusion.diffusion_spectral_mi(x, y, 1.0, 2)
    random_labels = diffusion.diffusion_spectral_mi(x, y[torch.randperm(300, generator=g)], 1.0, 2)
    assert informative > 1.0 and abs(random_labels) < 0.2
    with pytest.raises(ValueError, match="one label per row"):
        diffusion.diffusion_spectral_mi(x, y[:10], 1.0, 2)


# ---------------------------------------------------------------------------------------------
# EigenTrack window features, SPD metrics

def test_window_features_match_numpy_covariance_eigenvalues():
    from helpers.geometry import eigentrack
    rng = np.random.default_rng(6)
    h = rng.normal(size=(2, 10, 25)) * np.linspace(0.5, 2, 25)
    f = eigentrack.window_features(torch.from_numpy(h), k=3).numpy()
    for s in range(2):
        ev = np.sort(np.linalg.eigvalsh(np.cov(h[s].T, ddof=0)))[::-1].clip(min=0)
        p = ev / ev.sum()
        np.testing.assert_allclose(f[s, :3], p[:3], rtol=1e-8)
        assert abs(f[s, 3] - stats.entropy(p[p > 1e-12])) < 1e-8
        assert abs(f[s, 4] - np.log(ev.sum())) < 1e-8
    with pytest.raises(ValueError, match="window length"):
        eigentrack.window_features(torch.from_numpy(h), k=11)
    with pytest.raises(ValueError, match=r"\(S, W, d\)"):
        eigentrack.window_features(torch.randn(10, 25))


def _random_spd(rng, d, n=None):
    a = rng.normal(size=(n or 1, d, d + 3))
    c = a @ a.transpose(0, 2, 1) / (d + 3) + 0.1 * np.eye(d)
    return c if n else c[0]


def test_spd_distances_against_scipy():
    from scipy import linalg
    from helpers.geometry import spd
    rng = np.random.default_rng(7)
    a, b = _random_spd(rng, 6), _random_spd(rng, 6)
    le = np.linalg.norm(linalg.logm(a) - linalg.logm(b))
    assert abs(spd.log_euclidean(torch.from_numpy(a), torch.from_numpy(b)).item() - le) < 1e-6   # scipy logm: ~1e-8
    ra = linalg.sqrtm(a)
    bw = np.sqrt(np.trace(a) + np.trace(b) - 2 * np.trace(linalg.sqrtm(ra @ b @ ra)).real)
    assert abs(spd.bures_wasserstein(torch.from_numpy(a), torch.from_numpy(b)).item() - bw) < 1e-6
    v = spd.log_vectors(torch.from_numpy(np.stack([a, b])))
    assert abs((v[0] - v[1]).norm().item() - le) < 1e-6
    with pytest.raises(ValueError, match="positive definite"):
        spd.spd_log(torch.zeros(3, 3))


def test_bures_wasserstein_mean_of_commuting_matrices_and_nearest_mean():
    from helpers.geometry import spd
    # diagonal (commuting) matrices: the barycentre is diag((mean of sqrt)^2)
    c = torch.diag_embed(torch.tensor([[1.0, 4.0], [9.0, 16.0]], dtype=torch.float64))
    expect = torch.diag(torch.tensor([4.0, 9.0], dtype=torch.float64))   # ((1 + 3) / 2)^2, ((2 + 4) / 2)^2
    assert torch.allclose(spd.bures_wasserstein_mean(c), expect, atol=1e-8)
    rng = np.random.default_rng(8)
    base = [np.diag(np.linspace(1, 3, 4)), np.diag(np.linspace(3, 1, 4))]
    train = torch.from_numpy(np.stack([base[i % 2] + 0.05 * _random_spd(rng, 4) for i in range(20)]))
    labels = torch.arange(20) % 2
    for metric in ("log-euclidean", "bures-wasserstein"):
        assert torch.equal(spd.nearest_mean(train, labels, train, metric), labels)
    with pytest.raises(ValueError, match="valid"):
        spd.nearest_mean(train, labels, train, "euclid")
    h = torch.randn(5, 3, 4, 4)
    covs = spd.spd_covariances(h, shrink=0.0)
    ref = np.cov(h[2].flatten(1).double().numpy())
    assert np.allclose(covs[2].numpy(), ref)
