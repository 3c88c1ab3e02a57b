"""helpers.concepts against independent references: scikit-learn's logistic regression, scipy's t-test,
Captum's TCAV, and ``wild``'s own cue drawing; plus the refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from helpers.concepts import cav, consistent, tcav, wild_concepts
from helpers.data import wild


def _pair(d: int, seed: int = 0, shift: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(30, d, generator=g) + shift, torch.randn(25, d, generator=g)


@pytest.mark.parametrize("d", [5, 200, 3000])
def test_fit_cav_equals_sklearn_logistic_regression(d):
    from sklearn.linear_model import LogisticRegression

    a, b = _pair(d)
    got = cav.fit_cav(a, b, C=0.5)
    x = torch.cat([a, b]).double().numpy()
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=20000).fit(x, y)
    w = torch.tensor(ref.coef_[0])
    assert torch.allclose(got.weights.double(), w, atol=1e-4 * w.abs().max().item())
    assert abs(got.bias - ref.intercept_[0]) < 1e-4 * (1 + abs(ref.intercept_[0]))
    assert torch.dot(got.vector.double(), w / w.norm()) > 0.99999


def test_fit_cav_points_to_the_concept_and_gram_path_agrees():
    a, b = _pair(50, seed=1, shift=0.0)
    a[:, 3] += 4.0
    full = cav.fit_cav(a, b)
    assert int(full.vector.abs().argmax()) == 3 and full.vector[3] > 0
    x = torch.cat([a, b])
    via_gram = cav.fit_cav(a, b, gram=cav.gram_matrix(x))
    assert torch.allclose(full.vector, via_gram.vector, atol=1e-5)
    flipped = cav.fit_cav(b, a)
    assert torch.allclose(flipped.vector, -full.vector, atol=1e-5)


def test_t_test_equals_scipy():
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        a, b = torch.rand(12, generator=g).double(), torch.rand(9, generator=g).double() * 0.8
        t, p = tcav.t_test(a, b)
        ref = stats.ttest_ind(a.numpy(), b.numpy())
        assert abs(t - ref.statistic) < 1e-9 and abs(p - ref.pvalue) < 1e-9


def test_significance_uses_bonferroni_over_concepts_and_layers():
    scores = {c: {l: torch.tensor([0.9, 1.0, 0.95]) for l in "ab"} for c in "xyz"}
    p, threshold = tcav.significance(scores, {"a": torch.tensor([0.2, 0.5, 0.4]), "b": torch.tensor([0.3, 0.6, 0.5])},
                                     alpha=0.06)
    assert threshold == pytest.approx(0.01)
    assert p["x"]["a"] == pytest.approx(stats.ttest_ind([0.9, 1.0, 0.95], [0.2, 0.5, 0.4]).pvalue)


def test_tcav_refuses_fewer_than_two_counter_sets_and_bad_shapes():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="at least 2 random counter-sets"):
        tcav.fit_concepts(net, ["0"], {"c": torch.randn(5, 4)}, [torch.randn(5, 4)])
    with pytest.raises(ValueError, match="at least 2 random counter-sets"):
        tcav.significance({"c": {"l": torch.tensor([1.0])}}, {"l": torch.tensor([0.5, 0.4])})
    with pytest.raises(ValueError, match="one set per random counter-set"):
        tcav.fit_concepts(net, ["0"], {"c": [torch.randn(5, 4)] * 2}, [torch.randn(5, 4)] * 3)
    with pytest.raises(ValueError, match="vectors must be"):
        tcav.directional_derivatives(torch.randn(3, 4), torch.randn(5))
    with pytest.raises(ValueError, match="same features"):
        cav.fit_cav(torch.randn(5, 4), torch.randn(5, 6))


def test_tcav_score_matches_a_manual_gradient():
    g = torch.Generator().manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    x = torch.randn(40, 6, generator=g)
    grads = tcav.class_gradients(net, ["1"], x, 2)["1"]
    h = net[1](net[0](x)).detach().requires_grad_(True)
    net[2](h)[:, 2].sum().backward()
    assert torch.allclose(grads, h.grad, atol=1e-6)
    v = torch.randn(5, generator=g)
    assert tcav.tcav_score(grads, v) == pytest.approx(((h.grad @ v) > 0).double().mean().item())


def test_planted_concept_scores_high_and_random_is_not_significant():
    # a 2-layer net whose class-1 logit reads feature 0: a concept shifted along feature 0 is significant
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(8))
        net[0].bias.zero_()
        net[2].weight.zero_()
        net[2].weight[1, 0] = 1.0
    g = torch.Generator().manual_seed(4)
    sets = lambda shift: [torch.randn(20, 8, generator=g) + shift for _ in range(10)]  # noqa: E731
    planted = torch.zeros(8)
    planted[0] = 3.0
    cavs = tcav.fit_concepts(net, ["1"], {"planted": sets(planted), "random": sets(0.0)}, sets(0.0), sets(0.0))
    res = tcav.run_tcav(net, cavs, torch.randn(30, 8, generator=g), 1)
    assert res.scores["planted"]["1"].mean() > 0.95 and res.accuracy["planted"]["1"].mean() > 0.8
    assert res.accuracy["random"]["1"].mean() < 0.75
    assert not res.significant("random", "1")


def test_paste_cue_reproduces_wild_spurious():
    clean, cued = wild(16, "test", seed=5), wild(16, "test", seed=5, spurious=True)
    for i in range(16):
        assert torch.equal(wild_concepts.paste_cue(clean.images[i:i + 1], int(cued.cues[i])), cued.images[i:i + 1])


def test_concept_pool_sets_are_disjoint_and_have_the_property():
    ds = wild(600, "test", seed=6)
    pool = wild_concepts.ConceptPool(ds, seed=0)
    red = pool.take("tint:red", runs=2, n=10)
    rnd = pool.take("random", runs=3, n=10)
    assert len(red) == 2 and all(s.shape == (10, 3, 64, 64) for s in red)
    flat = torch.cat(red + rnd).flatten(1)
    assert len(torch.unique(flat, dim=0)) == len(flat)                 # no image twice
    idx = [int((ds.images.flatten(1) == im).all(1).nonzero()[0]) for im in torch.cat(red).flatten(1)]
    assert all(int(ds.tints[i]) == wild_concepts.TINT_FAMILIES.index("red") for i in idx)
    with pytest.raises(ValueError, match="unknown concept"):
        pool.take("colour:red", 1, 5)
    with pytest.raises(ValueError, match="unused images"):
        pool.take("tint:red", 50, 10)


def test_fused_cav_blocks_point_to_the_concept_in_every_layer():
    g = torch.Generator().manual_seed(7)
    c = {"a": torch.randn(30, 6, generator=g), "b": torch.randn(30, 9, generator=g) * 10}
    r = {"a": torch.randn(30, 6, generator=g), "b": torch.randn(30, 9, generator=g) * 10}
    c["a"][:, 1] += 3.0
    c["b"][:, 4] += 30.0
    v = consistent.fused_cav(c, r)
    assert int(v["a"].abs().argmax()) == 1 and v["a"][1] > 0
    assert int(v["b"].abs().argmax()) == 4 and v["b"][4] > 0
    with pytest.raises(ValueError, match="same layers"):
        consistent.fused_cav(c, {"a": r["a"]})


def test_captum_tcav_gives_our_scores(tmp_path):
    captum_concept = pytest.importorskip("captum.concept")
    from captum.concept._utils.classifier import Classifier
    from torch.utils.data import DataLoader

    class Ours(Classifier):
        def __init__(self):
            self.fit, self.ids = None, None

        def train_and_eval(self, dataloader, **kwargs):
            x, y = map(torch.cat, zip(*dataloader))
            self.ids = [int(y.min()), int(y.max())]
            self.fit = cav.fit_cav(x[y == self.ids[0]], x[y == self.ids[1]])

        def weights(self):
            return torch.stack([self.fit.weights, -self.fit.weights])

        def classes(self):
            return self.ids

    g = torch.Generator().manual_seed(8)
    net = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3)).eval()
    concept_sets = [torch.randn(15, 6, generator=g) + 1 for _ in range(3)]
    random_sets = [torch.randn(15, 6, generator=g) for _ in range(3)]
    inputs = torch.randn(40, 6, generator=g)
    mine = tcav.run_tcav(net, tcav.fit_concepts(net, ["1"], {"c": concept_sets}, random_sets), inputs, 2)
    exp = [[captum_concept.Concept(i, f"c{i}", DataLoader(concept_sets[i], batch_size=15)),
            captum_concept.Concept(100 + i, f"r{i}", DataLoader(random_sets[i], batch_size=15))] for i in range(3)]
    scores = captum_concept.TCAV(net, ["1"], classifier=Ours(), save_path=str(tmp_path)).interpret(inputs, exp, target=2)
    theirs = torch.tensor([scores[f"{i}-{100 + i}"]["1"]["sign_count"][0].item() for i in range(3)])
    assert torch.allclose(theirs.double(), mine.scores["c"]["1"], atol=1e-9)
