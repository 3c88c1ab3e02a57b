"""helpers.ops.logistic and helpers.readouts (probes, lenses, authorship): parity with scikit-learn, the model's
own logits and the tuned-lens library; control tasks; error cases."""
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import capture
from helpers.models.gpt import GPT, GPTConfig
from helpers.ops.logistic import fit_logistic
from helpers.readouts import authorship, lenses, probes


# ---------------------------------------------------------------------------------------------
# logistic regression

def _blobs(n=240, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = torch.randn(n, d, generator=g) + 1.5 * F.one_hot(y, d).float()
    return x, y


@pytest.mark.parametrize("k", [2, 3])
def test_fit_logistic_matches_sklearn(k):
    from sklearn.linear_model import LogisticRegression
    x, y = _blobs(k=k)
    wd = 0.05
    ours = fit_logistic(x, y, k, wd)
    c = (2 if k == 2 else 1) / (len(x) * wd)  # binary sklearn penalises one vector, half of our two rows
    sk = LogisticRegression(C=c, tol=1e-10, max_iter=5000).fit(x.double().numpy(), y.numpy())
    ours_p = ours.logits(x).softmax(-1).double().numpy()
    assert np.abs(sk.predict_proba(x.double().numpy()) - ours_p).max() < 1e-4
    # a penalty that is too small or too large gives other probabilities: the check can fail
    other = fit_logistic(x, y, k, wd * 10).logits(x).softmax(-1).double().numpy()
    assert np.abs(sk.predict_proba(x.double().numpy()) - other).max() > 1e-2


def test_fit_logistic_standardize_is_scale_free_and_validates():
    x, y = _blobs()
    a = fit_logistic(x, y, standardize=True)
    scaled = x * torch.tensor([1000.0, 1, 1, 1, 1, 0.001])
    b = fit_logistic(scaled, y, standardize=True)
    assert torch.allclose(a.logits(x), b.logits(scaled), atol=1e-3)
    assert a.accuracy(x, y) > 0.7
    with pytest.raises(ValueError, match="weight_decay"):
        fit_logistic(x, y, weight_decay=0)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fit_logistic(x[0], y)
    with pytest.raises(ValueError, match="integer"):
        fit_logistic(x, y.float())
    with pytest.raises(ValueError, match="0..1"):
        fit_logistic(x, y, n_classes=2)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        a.logits(torch.zeros(3, 5))


# ---------------------------------------------------------------------------------------------
# probes

def test_segment_tokens_label_every_token_with_its_segment():
    ids, kinds = probes.segment_tokens(6, seed=1, n_ctx=40)
    assert ids.shape == kinds.shape == (6, 40)
    assert (ids[:, 0] == 0).all() and (kinds[:, 0] == -1).all() and (kinds[:, 1:] >= 0).all()
    from helpers.data import tinyworld
    tok = tinyworld.tokenizer()
    # words that only one kind of segment uses carry that kind (an induction run may repeat any word)
    only = {"capital": "fact", "feel": "sentiment", "gave": "ioi", "after": "cyclic"}
    for word, kind in only.items():
        where = ids == tok.stoi[word]
        assert ((kinds[where] == probes.KINDS.index(kind)) | (kinds[where] == probes.KINDS.index("induction"))).all()
    assert torch.equal(probes.segment_tokens(6, seed=1, n_ctx=40)[0], ids)
    with pytest.raises(ValueError):
        probes.segment_tokens(0, seed=1)


def test_segment_tokens_with_another_tokenizer_labels_each_token_with_its_segment_text():
    from helpers.data import tinyworld
    tok = tinyworld.tokenizer()
    # the tinyworld tokenizer's own encode gives the default result
    default = probes.segment_tokens(5, seed=3, n_ctx=30)
    same = probes.segment_tokens(5, seed=3, n_ctx=30, encode=tok.encode)
    assert torch.equal(default[0], same[0]) and torch.equal(default[1], same[1])

    # a character-level tokenizer without BOS: every character (spaces too) carries the kind of its segment
    def chars(text):
        return [ord(c) for c in text]

    for seed in range(4):   # one sequence per seed: the segments drawn then do not depend on the tokenizer
        ids, kinds = probes.segment_tokens(1, seed=seed, n_ctx=50, encode=chars)
        assert ids.shape == kinds.shape == (1, 50) and (kinds >= 0).all()   # no BOS: no -1
        text = "".join(map(chr, ids[0].tolist()))
        words = probes.segment_tokens(1, seed=seed, n_ctx=60)   # at least 50 characters of the same text
        assert tok.decode(words[0][0]).removeprefix("<bos> ").startswith(text)
        # a kind changes only where a segment starts: at the space after the last segment's final "."
        changes = [j for j in range(1, 50) if kinds[0, j] != kinds[0, j - 1]]
        assert all(text[j - 1:j + 1] == ". " for j in changes)
        # and every segment's kind is the word-level kind of its first word
        first_words = [len(text[:j].split()) for j in [0] + changes]   # the word index of each segment start
        assert [int(kinds[0, j]) for j in [0] + changes] == [int(words[1][0, w + 1]) for w in first_words]
    with pytest.raises(ValueError):
        probes.segment_tokens(2, seed=0, n_ctx=1, encode=chars)


def test_control_labels_one_label_per_word_from_the_label_distribution():
    g = torch.Generator().manual_seed(0)
    words = torch.randint(0, 3000, (20000,), generator=g)
    labels = torch.multinomial(torch.tensor([0.7, 0.2, 0.1]), 20000, replacement=True, generator=g)
    c = probes.control_labels(words, labels, seed=3)
    for w in words[:50].tolist():
        assert c[words == w].unique().numel() == 1
    # each word type's label is drawn from the empirical distribution of the labels
    per_type = torch.bincount(probes.control_labels(torch.arange(3000), labels[:3000], seed=3), minlength=3).float() / 3000
    assert (per_type - torch.bincount(labels[:3000], minlength=3).float() / 3000).abs().max() < 0.04
    assert not torch.equal(probes.control_labels(words, labels, seed=4), c)
    with pytest.raises(ValueError, match="same shape"):
        probes.control_labels(words, labels[:-1])


def test_word_baseline_majority_and_unseen_words():
    train_w = torch.tensor([0, 0, 0, 1, 1, 2])
    train_y = torch.tensor([1, 1, 0, 2, 2, 1])
    pred = probes.word_baseline(train_w, train_y, torch.tensor([0, 1, 2, 5]))
    assert pred.tolist() == [1, 2, 1, 1]  # word 5 unseen: the overall majority label (1)


def test_selectivity_and_mlp_probe_memorise_random_word_labels():
    g = torch.Generator().manual_seed(0)
    n_words, d = 300, 16
    table = torch.randn(n_words, d, generator=g)          # a "word embedding": the features are only the word
    words = torch.randint(0, n_words, (3000,), generator=g)
    x = table[words] + 0.05 * torch.randn(3000, d, generator=g)
    task = (table[words, 0] > 0).long()                   # a linear property of the word
    control = probes.control_labels(words, task, seed=0)
    tr = torch.arange(3000) < 2000
    s = probes.linear_selectivity(x[tr], task[tr], control[tr], x[~tr], task[~tr], control[~tr])
    assert s.task > 0.95 and s.control < 0.75 and s.selectivity == pytest.approx(s.task - s.control)
    mlp = probes.fit_mlp_probe(x[tr], control[tr], hidden=256, steps=400)
    # 300 random word labels in 16 dimensions: a linear probe cannot memorise them, an MLP can
    assert mlp.accuracy(x[tr], control[tr]) > 0.95 and mlp.accuracy(x[~tr], control[~tr]) > s.control + 0.1
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        probes.fit_mlp_probe(x[0], control)


# ---------------------------------------------------------------------------------------------
# lenses

@pytest.fixture(scope="module")
def tiny_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=30, n_ctx=16, n_layer=2, n_head=2, d_model=32, d_mlp=64)).eval()


def test_logit_lens_at_the_last_block_is_the_model(tiny_gpt, gpt2):
    ids = torch.randint(0, 30, (3, 10))
    with torch.no_grad(), capture(tiny_gpt, ["blocks.1"]) as acts:
        logits = tiny_gpt(ids)
    norm, unembed = lenses.final_readout(tiny_gpt)
    assert torch.allclose(lenses.logit_lens(acts["blocks.1"], norm, unembed), logits, atol=1e-5)
    # Hugging Face: GPT-2's last hidden state through ln_f and lm_head gives its logits
    ids = torch.randint(0, 101, (2, 7))
    with torch.no_grad(), capture(gpt2, ["transformer.h.2"]) as acts:
        out = gpt2(ids)
    norm, head = lenses.final_readout(gpt2)
    assert norm is gpt2.transformer.ln_f and head is gpt2.lm_head
    assert torch.allclose(lenses.logit_lens(acts["transformer.h.2"], norm, head), out.logits, atol=1e-5)
    with pytest.raises(ValueError, match="final norm"):
        lenses.final_readout(torch.nn.Linear(2, 2))


def test_tuned_lens_starts_as_logit_lens_and_training_lowers_kl(tiny_gpt):
    ids = torch.randint(0, 30, (64, 12))
    names = ["resid_embed", "blocks.0"]
    with torch.no_grad(), capture(tiny_gpt, names) as acts:
        final = tiny_gpt(ids).flatten(0, 1)
    norm, unembed = lenses.final_readout(tiny_gpt)
    res = {n: acts[n].flatten(0, 1) for n in names}
    untrained = lenses.TunedLens(names, 32)
    assert torch.allclose(untrained.logits(res["blocks.0"], "blocks.0", norm, unembed),
                          lenses.logit_lens(res["blocks.0"], norm, unembed))
    lens = lenses.fit_tuned_lens(res, final, norm, unembed, steps=150, lr=3e-3)
    assert all(p.requires_grad for p in tiny_gpt.parameters())  # the model's flags are restored
    with torch.no_grad():
        for n in names:
            assert lenses.kl_to_final(lens.logits(res[n], n, norm, unembed), final) < \
                0.7 * lenses.kl_to_final(lenses.logit_lens(res[n], norm, unembed), final)
        scores = lenses.score_lens({"x": final}, final, final.argmax(-1))
    assert scores.accuracy["x"] == 1.0 and scores.agreement["x"] == 1.0 and abs(scores.kl["x"]) < 1e-6
    with pytest.raises(KeyError, match="blocks.0"):
        lens.translate(res["blocks.0"], "blocks.5")
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        lenses.fit_tuned_lens({"a": res["blocks.0"], "b": res["blocks.0"][:5]}, final, norm, unembed)


def test_tuned_lens_equals_the_tuned_lens_library_on_a_llama():
    tl_nn = pytest.importorskip("tuned_lens.nn")
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    ref = tl_nn.TunedLens.from_model(llama)
    names = [f"model.layers.{i}" for i in range(3)]
    ours = lenses.TunedLens(names, 32)
    with torch.no_grad():
        for t in ours.translators:  # random translators, copied into the library's lens
            t.weight.normal_(0, 0.1)
            t.bias.normal_(0, 0.1)
        for i, t in enumerate(ours.translators):
            ref.layer_translators[i].load_state_dict(t.state_dict())
        ids = torch.randint(0, 50, (2, 6))
        with capture(llama, names) as acts:
            llama(ids)
        norm, head = lenses.final_readout(llama)
        for i, n in enumerate(names):
            assert torch.allclose(ours.logits(acts[n], n, norm, head), ref(acts[n], i), atol=1e-5)
        logit_ref = tl_nn.LogitLens.from_model(llama)
        assert torch.allclose(lenses.logit_lens(acts[names[1]], norm, head), logit_ref(acts[names[1]], 1), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# authorship

def test_two_authors_differ_in_order_only():
    texts, authors = authorship.two_authors(4000, seed=0, habit=0.8)
    assert authors.float().mean() == 0.5
    bow, vocab = authorship.bag_of_words(texts, 1)
    by_author = torch.stack([bow[authors == a].mean(0) for a in (0, 1)])
    assert (by_author[0] - by_author[1]).abs().max() < 0.05       # the same words at the same rates
    # but not the same neighbours: word pairs tell the authors apart, words do not
    tr = torch.arange(4000) < 1000
    accs = {}
    for n in (1, 2):
        feats, vocab = authorship.bag_of_words([t for t, k in zip(texts, tr) if k], n)
        test, _ = authorship.bag_of_words([t for t, k in zip(texts, tr) if not k], n, vocab)
        accs[n] = fit_logistic(feats, authors[tr], 2, 0.01, standardize=True).accuracy(test, authors[~tr])
    assert accs[1] < 0.56 and accs[2] > 0.74, accs
    # the habit rate is the best possible accuracy: "time phrase first" alone is right 80 % of the time
    first = torch.tensor([not t.split()[0] in ("the", "my", "our", "a") for t in texts])
    assert ((first.long() == (authors == 0).long()).float().mean() - 0.8).abs() < 0.03
    with pytest.raises(ValueError, match="habit"):
        authorship.sentence(random.Random(0), 0, habit=0.3)


def test_bag_of_words_counts_and_fixed_vocabulary():
    counts, vocab = authorship.bag_of_words(["a b a", "b c"], n=2)
    assert vocab == ["a b", "b a", "b c"] and counts.tolist() == [[1, 1, 0], [0, 0, 1]]
    test, _ = authorship.bag_of_words(["a b z"], n=2, vocab=vocab)
    assert test.tolist() == [[1, 0, 0]]


def test_sentence_embeddings_pool_over_the_mask_only():
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32)).eval()

    def preprocess(texts):
        rows = [[int(w) for w in t.split()] for t in texts]
        length = max(map(len, rows))
        return {"input_ids": torch.tensor([r + [0] * (length - len(r)) for r in rows]),
                "attention_mask": torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows])}

    alone = authorship.sentence_embeddings(bert, preprocess, ["3 4 5"], layers=(0, -1))
    padded = authorship.sentence_embeddings(bert, preprocess, ["3 4 5", "1 2 3 4 5 6 7 8"], layers=(0, -1))
    for layer in (0, -1):
        assert torch.allclose(alone[layer][0], padded[layer][0], atol=1e-5)
        assert torch.allclose(padded[layer].norm(dim=-1), torch.ones(2))
    with pytest.raises(ValueError, match="no texts"):
        authorship.sentence_embeddings(bert, preprocess, [])


def test_next_token_logits_and_last_states_group_prompts_by_length():
    from helpers.readouts import next_token
    from helpers.zoo import evals, open_model

    lm = open_model("tinyworld-gpt", kinds=("text",), device="cpu")
    texts = ["i feel", "the movie was great . i feel", "the game was awful . i feel", "the cat"]
    got = next_token.next_token_logits(lm, texts)
    assert torch.allclose(got, evals.next_token_logits(lm.model, texts), atol=1e-5)
    for i, t in enumerate(texts):  # each row as if run alone
        with torch.no_grad():
            alone = lm.model(torch.tensor([lm.encode(t)]))[0, -1]
        assert torch.allclose(got[i], alone, atol=1e-4)
        with torch.no_grad(), capture(lm.model, lm.blocks[1]) as acts:
            lm.model(torch.tensor([lm.encode(t)]))
        assert torch.allclose(next_token.last_states(lm, lm.blocks[1], [t])[0], acts[lm.blocks[1]][0, -1], atol=1e-5)
    states = next_token.last_states(lm, lm.blocks[1], texts)
    assert states.shape == (4, lm.d_model) and not torch.allclose(states[1], states[2])
    with pytest.raises(ValueError, match="no prompts"):
        next_token.next_token_logits(lm, [])
