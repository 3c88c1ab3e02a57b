"""tinyworld corpus, tokenizer, GPT and the committed tinyworld-gpt zoo models."""
import collections
import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.data import tinyworld as tw
from helpers.models.gpt import GPT, GPTConfig, load_gpt, save_gpt
from helpers.zoo import evals

ROOT = Path(__file__).resolve().parents[1]
ZOO = ["tinyworld-gpt", "tinyworld-gpt-relu"]


def test_tokenizer_round_trip_and_bos_first():
    tok = tw.tokenizer()
    text = "when mary and john went to the park , john gave the ball to mary ."
    ids = tok.encode(text)
    assert ids[0] == tok.bos_id == 0
    assert tok.decode(ids) == "<bos> " + text
    assert tok.encode(tok.decode(ids)) == ids  # a leading <bos> is not doubled
    assert tok.encode("") == [tok.bos_id]
    assert len(tok) == len(set(tw.VOCAB))
    with pytest.raises(KeyError, match="paris"):
        tok.encode("the capital of france is pariss")


def test_corpus_is_deterministic_from_seed_and_starts_with_bos():
    cfg = tw.CorpusConfig(n_ctx=48)
    a, b = tw.Corpus(cfg, seed=3).batch(8), tw.Corpus(cfg, seed=3).batch(8)
    assert a.shape == (8, 49) and torch.equal(a, b)
    assert not torch.equal(a, tw.Corpus(cfg, seed=4).batch(8))
    assert (a[:, 0] == 0).all() and (a[:, 1:] != 0).all()  # <bos> first and only first
    with pytest.raises(ValueError, match="valid"):
        tw.Corpus(tw.CorpusConfig(weights={"icl": 1.0, "poems": 1.0}))


def test_ioi_has_both_orders_and_held_out_pairs():
    rng = random.Random(0)
    orders = collections.Counter()
    for _ in range(400):
        words, info = tw.ioi(rng)
        orders[info["order"]] += 1
        a, b, s, io = words[1], words[3], words[9], words[-2]
        assert {a, b} == {s, io} and s != io
        assert (a == io) == (info["order"] == "ABBA")  # ABBA: IO first; BABA: S first
        assert frozenset((a, b)) not in tw.IOI_HELDOUT_PAIRS
    assert min(orders.values()) > 150
    prompts = tw.ioi_prompts(100)
    assert collections.Counter(p.meta["order"] for p in prompts) == {"ABBA": 50, "BABA": 50}
    for p in prompts:
        words = p.text.split()
        assert frozenset((p.meta["io"], p.meta["s"])) in tw.IOI_HELDOUT_PAIRS
        assert words[-5] == p.meta["s"] and words.count(p.meta["s"]) == 2 and words.count(p.answer) == 1
        assert p.meta["abc"].split()[-5] == p.meta["c"] not in words  # only S2 replaced


def test_icl_tasks_are_ambiguous_without_demonstrations():
    # The three readings of every word are different words ...
    for w in tw.ICL_WORDS:
        assert len({m[w] for m in tw.ICL_TASKS.values()}) == 3
        assert tw.ANTONYM[tw.ANTONYM[w]] == w
    # ... a zero-shot prompt carries no task information ...
    texts = {t: sorted(p.text for p in tw.icl_prompts(t, 0, 200)) for t in tw.ICL_TASKS}
    assert all(set(v) == {f"{w} :" for w in tw.ICL_WORDS} for v in texts.values())
    # ... and in the corpus the first answer after "w :" is each reading equally often.
    rng, first = random.Random(0), collections.Counter()
    for _ in range(3000):
        words, info = tw.icl(rng)
        first[info["task"]] += 1
        assert words[2] == tw.ICL_TASKS[info["task"]][words[0]]
    assert all(abs(n / 3000 - 1 / 3) < 0.04 for n in first.values())
    # held-out prompts never show the query or any of its answers among the demonstrations
    for t in tw.ICL_TASKS:
        for p in tw.icl_prompts(t, 6, 50):
            assert not ({p.meta["query"], *p.meta["answers"].values()} & set(p.text.split()[:-2]))


def test_gpt_names_shapes_and_save_load(tmp_path):
    model = GPT(GPTConfig(vocab_size=len(tw.VOCAB), n_ctx=16, n_layer=2, act="relu"))
    names = dict(model.named_modules())
    for n in ["embed", "pos_embed", "resid_embed", "blocks.1.ln1", "blocks.1.attn", "blocks.1.attn.pattern",
              "blocks.1.resid_mid", "blocks.1.ln2", "blocks.1.mlp.fc", "blocks.1.mlp.act", "blocks.1.mlp.proj",
              "ln_f", "unembed"]:
        assert n in names
    assert isinstance(names["blocks.0.mlp.act"], torch.nn.ReLU)
    x = torch.randint(0, len(tw.VOCAB), (3, 10))
    assert model(x).shape == (3, 10, len(tw.VOCAB))
    save_gpt(model, tmp_path / "m.safetensors")
    assert torch.allclose(load_gpt(tmp_path / "m.safetensors")(x), model.eval()(x), atol=1e-6)
    with pytest.raises(ValueError, match="n_ctx"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="valid"):
        GPT(GPTConfig(act="swish"))


def test_training_script_runs_a_few_steps(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "zoo" / "train_tinyworld.py"), "--steps", "3", "--out",
                        str(tmp_path), "--no-gate", "--n-layer", "1", "--d-model", "32", "--n-ctx", "32"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["gate"]["passed"] is False and report["gate"]["failures"]
    weights = {"model.safetensors", "checkpoints/step_000000.safetensors", "checkpoints/step_000003.safetensors"}
    sidecars = {w.replace(".safetensors", ".json") for w in weights}
    assert set(report["files"]) == weights | sidecars | {"vocab.json"}
    for w in weights:  # each weight file's sidecar records its checksum (one format: helpers.models.io)
        assert json.loads((tmp_path / w.replace(".safetensors", ".json")).read_text())["sha256"] == report["files"][w]["sha256"]
    assert load_gpt(tmp_path / "model.safetensors").cfg.d_model == 32


@pytest.mark.parametrize("name", ZOO)
def test_committed_weights_reproduce_recorded_metrics(name):
    folder = ROOT / "data" / "zoo" / name
    if not (folder / "model.safetensors").exists():
        pytest.skip(f"{name} has not been trained (python zoo/train_tinyworld.py)")
    report = json.loads((folder / "metrics.json").read_text())
    assert report["gate"]["passed"]
    for rel, info in report["files"].items():
        if rel.endswith(".safetensors"):  # the sidecar that helpers.zoo checks agrees with the training record
            assert json.loads((folder / rel.replace(".safetensors", ".json")).read_text())["sha256"] == info["sha256"]
    for rel, info in report["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == info["sha256"], rel
    assert json.loads((folder / "vocab.json").read_text()) == tw.VOCAB
    torch.manual_seed(0)
    model = load_gpt(folder / "model.safetensors")
    assert model.cfg.act == ("relu" if name.endswith("relu") else "gelu")
    got, want = evals.evaluate(model), report["metrics"]
    assert evals.gate(got) == []
    for group in ("fact", "cyclic", "sentiment"):
        for k, v in want[group].items():
            assert abs(got[group][k] - v) <= 0.02, (group, k)
    for t, accs in want["icl"].items():
        for k, v in accs.items():
            assert abs(got["icl"][t][k] - v) <= 0.02, (t, k)
    for k in ("acc", "acc_ABBA", "acc_BABA", "abc_drop"):
        assert abs(got["ioi"][k] - want["ioi"][k]) <= 0.02, k
    for t, v in want["icl_zero_shot"]["prob_share"].items():
        assert abs(got["icl_zero_shot"]["prob_share"][t] - v) <= 0.02, t
