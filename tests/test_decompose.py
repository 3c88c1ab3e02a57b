"""helpers.decompose: top-k gradients equal autograd, SAELens's format loads in SAELens, semi-NMF, factors, stores."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import helpers
from helpers.data import tinyworld
from helpers.decompose import factors, quality, saelens_format, snmf
from helpers.decompose.sae import SparseAutoencoder, topk_gradients, train, train_from_store
from helpers.ops.metrics import roc_auc
from helpers.ops.metrics import roc_auc_columns


def dense_topk_loss(sae, x, dead, aux_coef):
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    vals, idx = pre.topk(sae.k, 1)
    x_hat = torch.zeros_like(pre).scatter(1, idx, vals.relu()) @ sae.W_dec + sae.b_dec
    mse = (x_hat - x).pow(2).sum(1).mean()
    n_dead = int(dead.sum())
    k_aux = min(sae.d_in // 2, n_dead)
    av, ai = pre.masked_fill(~dead, -math.inf).topk(k_aux, 1)
    z_aux = torch.zeros_like(pre).scatter(1, ai, av.relu())
    scale = aux_coef * min(n_dead / (sae.d_in // 2), 1.0)
    return mse + scale * (z_aux @ sae.W_dec - (x - x_hat).detach()).pow(2).sum(1).mean()


@pytest.mark.parametrize("with_dead", [False, True])
def test_topk_gradients_equal_autograd(with_dead):
    torch.manual_seed(0)
    sae = SparseAutoencoder(8, 40, k=4, seed=1)
    with torch.no_grad():
        sae.b_dec.normal_()
        sae.b_enc.normal_(0, 0.3)
    x = torch.randn(32, 8)
    dead = torch.zeros(40, dtype=torch.bool)
    if with_dead:
        dead[::3] = True
    grads, losses, fired = topk_gradients(sae, x, dead, aux_coef=0.5)
    loss = dense_topk_loss(sae, x, dead, 0.5) if with_dead else dense_topk_loss(sae, x, dead, 0.0)
    loss.backward()
    for name, p in sae.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert math.isclose(losses["mse"] + losses["aux"], loss.item(), rel_tol=1e-5)
    assert fired.sum() <= 32 * 4 and fired.any()


def test_train_reduces_loss_and_topk_l0():
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(32, 16, generator=g)
    codes = torch.rand(2000, 32, generator=g) * (torch.rand(2000, 32, generator=g) < 0.1)
    x = codes @ dirs
    sae = SparseAutoencoder(16, 64, k=4)
    log = train(sae, x, steps=300, batch_size=256, lr=3e-3)
    with torch.no_grad():
        z = sae.encode(x)
        assert quality.fvu(x, sae.decode(z)) < 0.3
    assert quality.l0(z) <= 4 and log.mse[-1] < 0.5 * log.mse[0]
    # unit-norm decoder rows during training; the input scale is folded into them at the end
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.full((64,), log.scale), rtol=1e-4)
    with pytest.raises(ValueError, match="l1"):
        train(SparseAutoencoder(16, 64), x, steps=1)


@pytest.mark.parametrize("k", [3, None])
def test_saelens_loads_our_folder(tmp_path, k):
    sae_lens = pytest.importorskip("sae_lens")
    sae = SparseAutoencoder(6, 24, k=k, seed=2)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.2)
        sae.b_dec.normal_()
    folder = saelens_format.save(sae, str(tmp_path / "sae"), hook_name="blocks.1", model_name="tinyworld-gpt")
    theirs = sae_lens.SAE.load_from_disk(folder)
    assert theirs.cfg.architecture() == ("topk" if k else "standard")
    assert theirs.cfg.metadata.hook_name == "blocks.1"
    x = torch.randn(20, 6)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), sae.encode(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(theirs(x), sae(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(saelens_format.load(folder)(x), sae(x))


def test_saelens_saved_folder_loads_here(tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig
    theirs = TopKSAE(TopKSAEConfig(d_in=5, d_sae=20, k=3))
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    theirs.save_model(tmp_path)
    x = torch.randn(7, 5)
    with torch.no_grad():
        torch.testing.assert_close(saelens_format.load(str(tmp_path))(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_semi_nmf_matches_closed_form_pieces_and_recovers():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 4, generator=g) @ torch.randn(4, 20, generator=g)
    fit = snmf.semi_nmf(x, k=4, iters=300, keep=1.0)
    assert fit.relative_error(x) < 0.1 and bool((fit.codes >= 0).all())
    sparse = snmf.semi_nmf(x, k=4, iters=50, keep=0.1)
    assert ((sparse.features != 0).sum(0) == 2).all()            # 10 % of 20 neurons per feature
    # the multiplicative update never increases ||A - F G^T|| for fixed F (Ding et al., theorem)
    a, f = x.double().T, fit.features.double()
    codes = torch.rand(300, 4, generator=g).double()
    errs = []
    for _ in range(20):
        errs.append(float((a - f @ codes.T).norm()))
        codes = snmf.update_codes(a, f, codes)
    assert all(e1 <= e0 + 1e-9 for e0, e1 in zip(errs, errs[1:])) and errs[-1] < errs[0]
    with pytest.raises(ValueError, match="k must be"):
        snmf.semi_nmf(x, k=0)


def test_roc_auc_columns_equals_sklearn_and_roc_auc():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 5, generator=g).round(decimals=1)   # ties on purpose
    labels = (torch.rand(200, 3, generator=g) < 0.3).long()
    ours = roc_auc_columns(scores, labels)
    for c in range(5):
        for f in range(3):
            ref = sklearn_metrics.roc_auc_score(labels[:, f].numpy(), scores[:, c].numpy())
            assert math.isclose(ours[c, f].item(), ref, abs_tol=1e-9)
            assert math.isclose(ours[c, f].item(), roc_auc(scores[:, c], labels[:, f]), abs_tol=1e-9)
    with pytest.raises(ValueError, match="one class"):
        roc_auc_columns(scores, torch.zeros(200, 1))


def test_labelled_tokens_and_best_auroc():
    tokens, labels = factors.labelled_tokens(6, n_ctx=32, seed=3)
    tok = helpers.data.tinyworld.tokenizer()
    words = [tok.vocab[i] for i in tokens[:, :-1].flatten().tolist()]
    days = labels["class:day"].flatten().tolist()
    assert days == [w in helpers.data.tinyworld.DAYS for w in words]
    segment = sum(labels[f"task:{kind}"].long() for kind in helpers.data.tinyworld.SEGMENTS)
    assert (segment[:, 0] == 0).all() and (segment[:, 1:] == 1).all()   # <bos> in none, every other token in one
    onehot = torch.nn.functional.one_hot(tokens[:, :-1].flatten(), len(tok)).float()
    best = factors.best_auroc(onehot, {k: v.flatten() for k, v in labels.items()})
    assert best["class:punctuation"] > 0.7 and best["task:icl"] < 1.0


def test_store_refusals_name_the_layers(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    store = helpers.extract(net, [torch.rand(5, 3), torch.rand(5, 3)], ["0", "1"], out=str(tmp_path / "a"),
                            progress=False)
    sae = SparseAutoencoder(4, 8, k=2)
    with pytest.raises(ValueError, match=r"\['0', '1'\]"):
        train_from_store(sae, store, "2", steps=1)
    with pytest.raises(ValueError, match="2-dim|4-dim"):
        train_from_store(SparseAutoencoder(2, 8, k=2), store, "0", steps=1)
    with pytest.raises(ValueError):
        helpers.extract(net, [torch.rand(5, 3)], "0", out=str(tmp_path / "b"), n=10, progress=False)
    with pytest.raises(ValueError, match=r"incomplete.*\['0'\]"):
        train_from_store(sae, helpers.ActivationStore(str(tmp_path / "b")), "0", steps=1)
    log = train_from_store(sae, store, "0", steps=2, batch_size=4)
    assert log.tokens == 8


def test_quality_measures():
    x = torch.randn(50, 6)
    assert quality.fvu(x, x) == 0.0 and math.isclose(quality.fvu(x, x.mean(0).expand_as(x)), 1.0)
    z = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert quality.l0(z) == 1.5 and math.isclose(quality.dead_fraction(z), 1 / 3)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10))
    tokens = torch.randint(0, 10, (3, 6))
    same = quality.spliced_loss(model, tokens, "0", lambda out: out)
    with torch.no_grad():
        ref = torch.nn.functional.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten()).item()
    assert math.isclose(same, ref, rel_tol=1e-6)
    assert quality.spliced_loss(model, tokens, "0", lambda out: out * 0) != same


def test_lib_keeps_what_the_next_layer_reads():
    from helpers.decompose import lib
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g) * torch.tensor([1.0, 1.0, 1.0, 10.0, 10.0, 10.0])
    w = torch.randn(6, 4, generator=g)
    w[3:] = 0                                              # the next layer never reads the three loud dims
    out = lib.output_basis(torch.tanh(x @ w))
    layer = lib.lib_layer(x, lambda v: out.coords(torch.tanh(v @ w)))
    assert layer.size == 3 and lib.pca_size(x, 0.99) >= 3
    reading = layer.whiten @ layer.rotate                  # (6, 3)
    assert reading[3:].abs().max() < 1e-5
    # a linear next layer: M = Jᵀ J with one J, eigenvalues checked against numpy
    lin = torch.randn(6, 2, generator=g)
    out2 = lib.output_basis(x @ lin)
    layer2 = lib.lib_layer(x, lambda v: out2.coords(v @ lin))
    mean = x.double().mean(0)
    _, s, vh = np.linalg.svd((x.double() - mean).numpy(), full_matrices=False)
    var = s ** 2 / len(x)
    j = ((vh.T * np.sqrt(var)).T @ lin.double().numpy() @ out2.whiten.double().numpy()).T
    ref = np.sort(np.linalg.eigvalsh(j.T @ j))[::-1][:layer2.size]
    np.testing.assert_allclose(layer2.eigenvalues.numpy(), ref, rtol=1e-4)


def test_skill_directions_and_steering():
    from helpers.decompose import skills
    pooled = torch.randn(40, 5) + torch.tensor([0, 0, 8.0, 0, 0]) * (torch.arange(40) % 2)[:, None]
    dirs, s = skills.skill_directions(pooled, 2)
    assert dirs[0, 2].abs() > 0.95 and s[0] > s[1]
    with pytest.raises(ValueError):
        skills.skill_directions(pooled, 6)
    model, _ = helpers.zoo.load("tinyworld-gpt-relu", device="cpu")
    tasks = {"fact": helpers.data.tinyworld.fact_prompts(0)[:12]}
    zero = skills.steering_effects(model, "blocks.1", torch.zeros(1, 128), 5.0, tasks)
    assert zero.abs().max() == 0                              # adding nothing changes nothing
    u = torch.randn(1, 128, generator=torch.Generator().manual_seed(0))
    big = skills.steering_effects(model, "blocks.1", u / u.norm(), 500.0, tasks)
    assert big.abs().max() > 0.3


def test_propositions_groups_by_precision():
    from helpers.decompose import propositions
    g = torch.Generator().manual_seed(0)
    lab = torch.rand(300, generator=g) < 0.3
    z = torch.zeros(300, 4)
    z[lab, 0] = torch.rand(int(lab.sum()), generator=g) + 0.1       # latent 0 fires exactly on the factor
    half = torch.nonzero(lab).flatten()[::2]
    z[half, 1] = 1.0                                                # latent 1 on half of it: precise too
    z[:, 2] = (torch.rand(300, generator=g) < 0.5).float()          # latent 2 fires anywhere: imprecise
    groups = propositions.latent_groups(z, {"f": lab, "never": torch.zeros(300, dtype=torch.bool)})
    assert groups["f"].tolist() == [0, 1] and "never" not in groups
    t = propositions.truth(z, groups)["f"]
    assert torch.equal(t, lab)
    assert propositions.precision_recall(t, lab) == (1.0, 1.0)
    assert propositions.precision_recall(z[:, 1] > 0, lab) == (1.0, len(half) / int(lab.sum()))


def test_on_lm_equals_the_tinyworld_functions_and_labels_follow_the_words():
    from helpers.decompose import factors, on_lm, quality, skills
    from helpers.zoo import evals, open_model

    lm = open_model("tinyworld-gpt-relu", ("text",), device="cpu")
    tokens, labels = on_lm.labelled_tokens(lm, 3, n_ctx=16, seed=1)
    ref_tokens, ref_labels = factors.labelled_tokens(3, n_ctx=16, seed=1)
    assert torch.equal(tokens, ref_tokens) and all(torch.equal(labels[k], ref_labels[k]) for k in ref_labels)
    prompts = tinyworld.fact_prompts(0)[:10]
    assert on_lm.accuracy(lm, prompts) == evals.accuracy(lm.model, prompts)
    tasks = {"fact": prompts, "cyclic": tinyworld.cyclic_prompts(0)[:7]}
    assert on_lm.task_accuracies(lm, tasks).tolist() == [evals.accuracy(lm.model, ps) for ps in tasks.values()]
    texts = [p.text for p in prompts]
    assert torch.allclose(skills.pooled_residual(lm, "blocks.1", texts), skills.pooled_residual(lm.model, "blocks.1", texts))
    # the MLP's input spliced by itself, the output spliced by itself: the clean loss both ways
    ids = tokens[:, :-1]
    clean = quality.spliced_loss(lm.model, tokens, "blocks.0", lambda o: o)
    assert abs(quality.spliced_loss(lm.model, tokens, lm.mlp_down[0], lambda h: h, inputs=True) - clean) < 1e-6
    assert abs(quality.spliced_loss(lm.model, tokens, lm.mlp_down[0], lambda h: h * 0, inputs=True) - clean) > 1e-3
    h = on_lm.layer_inputs(lm, lm.mlp_down[0], [ids])
    assert h.shape == (3 * 16, 512) and not any(m._forward_hooks or m._forward_pre_hooks for m in lm.model.modules())

    for spec in ("random:gpt2", "random:llama"):  # batched by token length = one text at a time
        other = open_model(spec, ("text",), device="cpu")
        texts = [p.text for p in tinyworld.icl_prompts("antonym", 3, n=4, seed=0)] + ["the capital of france is"]
        alone = torch.cat([other.logits(torch.tensor([other.encode(t)]))[:, -1] for t in texts])
        assert torch.allclose(other.next_token_logits(texts), alone, atol=1e-4)
    tokens, labels = on_lm.labelled_tokens(other, 3, n_ctx=16, seed=1)
    assert tokens.shape == (3, 17) and labels["class:day"].shape == (3, 16)
    # a token labelled "day" is (a piece of) a day's name
    day_ids = tokens[:, :-1][labels["class:day"]]
    days = {other.decode([i]).strip() for i in day_ids.tolist()}
    assert days and all(any(d.startswith(x) or x in d for d in tinyworld.DAYS) for x in days)
    assert quality.spliced_loss(other.model, tokens, other.mlp_down[0], lambda h: h, inputs=True) == \
        quality.spliced_loss(other.model, tokens, other.blocks[0], lambda o: o)
