"""Models and decoding: padding invariance, overfitting, beam=1 is greedy, batched equals single."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from captioner.config import Config, ModelConfig, TrainConfig, load_config
from captioner.decode.constrained import constrained_beam_search
from captioner.decode.search import _filter, beam_search, greedy, sample
from captioner.decode.stepper import TorchStepper as S
from captioner.errors import CaptionerError
from captioner.models import build_model
from captioner.text.vocab import END_IX, PAD_IX, START_IX, Vocab
from captioner.train.loop import caption_loss, load_data, train

V, D = 12, 16


def _model(kind: str, seed: int = 0) -> torch.nn.Module:
    if kind == "copy":
        return _copy_model(seed)
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind=kind, embed=8, hidden=16, attn_dim=8), V, D).eval()


def _feats(kind: str, b: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "copy":
        return torch.randn(b, D + 1000, generator=g)
    return torch.randn(b, 5, D, generator=g) if kind == "attend" else torch.randn(b, D, generator=g)


@pytest.mark.parametrize("kind", ["showtell", "attend", "copy"])
def test_padding_changes_neither_loss_nor_gradients(kind: str) -> None:
    model = _model(kind).train()
    feats = _feats(kind, 3)
    tokens = torch.tensor([[START_IX, 4, 5, END_IX], [START_IX, 6, END_IX, PAD_IX], [START_IX, END_IX, PAD_IX, PAD_IX]])
    padded = torch.cat([tokens, torch.full((3, 4), PAD_IX)], 1)
    grads = []
    for toks in (tokens, padded):
        model.zero_grad()
        torch.manual_seed(7)  # dropout is on: the same masks in both passes
        loss = caption_loss(model(feats, toks[:, :-1]), toks)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=1e-6)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_loss_is_mean_over_real_tokens_only() -> None:
    logits = torch.randn(2, 3, V)
    tokens = torch.tensor([[START_IX, 4, END_IX, PAD_IX], [START_IX, 5, 6, END_IX]])
    want = torch.stack(
        [
            -logits[0, 0].log_softmax(-1)[4],
            -logits[0, 1].log_softmax(-1)[END_IX],
            -logits[1, 0].log_softmax(-1)[5],
            -logits[1, 1].log_softmax(-1)[6],
            -logits[1, 2].log_softmax(-1)[END_IX],
        ]
    ).mean()
    torch.testing.assert_close(caption_loss(logits, tokens), want)


@pytest.mark.parametrize("kind", ["showtell", "attend", "copy"])
def test_beam_one_equals_greedy_and_batched_equals_single(kind: str) -> None:
    model, feats = _model(kind, 3), _feats(kind, 6)
    g = greedy(S(model, feats), max_len=8)
    b1 = beam_search(S(model, feats), beam=1, max_len=8)
    assert [c.tokens for c in g] == [c[0].tokens for c in b1]
    for x, y in zip(g, b1, strict=True):
        assert x.logprob == pytest.approx(y[0].logprob, abs=1e-5)
    b3 = beam_search(S(model, feats), beam=3, max_len=8, n_best=2)
    for i in range(6):
        one_g = greedy(S(model, feats[i : i + 1]), max_len=8)[0]
        one_b = beam_search(S(model, feats[i : i + 1]), beam=3, max_len=8, n_best=2)[0]
        assert one_g.tokens == g[i].tokens
        assert [c.tokens for c in one_b] == [c.tokens for c in b3[i]]
        assert b3[i][0].logprob >= g[i].logprob - 1e-5  # beam never finds a worse best caption
        assert all(len(c.tokens) <= 8 for c in b3[i])
    if kind == "attend":
        assert len(g[0].alphas) == len(g[0].tokens) and len(g[0].alphas[0]) == 5
        assert sum(g[0].alphas[0]) == pytest.approx(1.0, abs=1e-5) if g[0].alphas else True


@pytest.mark.parametrize("kind", ["showtell", "attend", "copy"])
def test_sequence_logprob_equals_decoding_confidence_and_sinks_unk(kind: str) -> None:
    from captioner.decode.stepper import sequence_logprob
    from captioner.text.vocab import UNK_IX, as_matrix

    model, feats = _model(kind, 6), _feats(kind, 4)
    caps = [b[0] for b in beam_search(S(model, feats), beam=3, max_len=8)]
    tokens = torch.from_numpy(as_matrix([[START_IX, *c.tokens, END_IX] for c in caps]))
    got = sequence_logprob(model, feats, tokens)
    torch.testing.assert_close(got, torch.tensor([c.confidence for c in caps]), rtol=0, atol=1e-5)
    with_unk = torch.from_numpy(as_matrix([[START_IX, UNK_IX, END_IX]] * 4))
    assert (sequence_logprob(model, feats, with_unk) < -1e8).all()  # decoding never says #UNK#: neither may a judge


def test_unk_blocked_and_max_len_respected() -> None:
    model, feats = _model("showtell", 4), _feats("showtell", 4)
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.bias[1] = 50.0  # #UNK# dominates every step
    assert all(1 not in c.tokens for c in greedy(S(model, feats), max_len=5))
    said = [c.tokens for c in greedy(S(model, feats), max_len=5, block_unk=False)]
    assert all(len(t) == 5 and t[::2] == [1, 1, 1] and 1 not in t[1::2] for t in said)  # never twice in a row
    beams = beam_search(S(model, feats), beam=2, max_len=5, block_unk=False)
    assert all(len(b[0].tokens) == 5 for b in beams)


@pytest.mark.parametrize("kind", ["showtell", "attend", "copy"])
def test_sampling_and_length_penalty_batched_equal_single(kind: str) -> None:
    model, feats = _model(kind, 3), _feats(kind, 6)
    drawn = sample(S(model, feats), max_len=8, temperature=1.5, top_p=0.9, seed=11)
    long = beam_search(S(model, feats), beam=3, max_len=8, length_penalty=1.0, n_best=2)
    for i in range(6):
        one = sample(S(model, feats[i : i + 1]), max_len=8, temperature=1.5, top_p=0.9, seed=11)[0]
        assert one.tokens == drawn[i].tokens and one.logprob == pytest.approx(drawn[i].logprob, abs=1e-5)
        one_b = beam_search(S(model, feats[i : i + 1]), beam=3, max_len=8, length_penalty=1.0, n_best=2)[0]
        assert [c.tokens for c in one_b] == [c.tokens for c in long[i]]


def test_sampling_is_seeded_and_top_k_one_is_greedy() -> None:
    model, feats = _model("showtell", 5), _feats("showtell", 5)
    a = sample(S(model, feats), temperature=1.0, seed=3)
    b = sample(S(model, feats), temperature=1.0, seed=3)
    assert [c.tokens for c in a] == [c.tokens for c in b]
    other = sample(S(model, feats), temperature=1.0, seed=4)
    assert [c.tokens for c in a] != [c.tokens for c in other]
    k1 = sample(S(model, feats), temperature=1.0, top_k=1, seed=9)
    assert [c.tokens for c in k1] == [c.tokens for c in greedy(S(model, feats))]
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    kept = _filter(logits, 0, 0.75) > -1e8
    assert kept.tolist() == [[True, True, False, False]]


@pytest.mark.parametrize("kind", ["showtell", "attend", "copy"])
def test_overfit_reproduces_captions(kind: str, shapes_data: Path, tmp_path: Path) -> None:
    cfg = Config(
        ModelConfig(kind=kind, embed=32, hidden=64, dropout=0.0, attn_dim=32),
        TrainConfig(
            data=str(shapes_data),
            out=str(tmp_path / "run"),
            batch_size=18,
            epochs=2,
            steps_per_epoch=40,
            lr=1e-2,
            checkpoint_every=1000,
            patience=0,
            seed=1,
        ),
    )
    train(cfg)
    from captioner.train.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "run" / "latest")
    d = load_data(cfg)
    feats = torch.from_numpy(d.store.get(d.kind, d.train_rows.tolist()))
    got = [ck.vocab.decode(c.tokens) for c in greedy(S(ck.model, feats, first=ck.vocab.first()))]
    want = [ck.vocab.decode(caps[0][1:]) for caps in d.train_caps]
    assert got == want


def test_config_errors_and_seed_preset(tmp_path: Path) -> None:
    cfg = load_config(Path(__file__).parents[1] / "configs" / "seed.toml", ["train.lr=3e-4", "train.data=runs/x"])
    assert (cfg.model.embed, cfg.model.hidden, cfg.model.dropout, cfg.train.clip, cfg.train.batch_size) == (
        128,
        200,
        0.5,
        10.0,
        50,
    )
    assert cfg.train.lr == 3e-4 and cfg.train.data == "runs/x"
    with pytest.raises(CaptionerError, match="unknown config key train.lrate"):
        load_config(None, ["train.lrate=1"])
    with pytest.raises(CaptionerError, match="train.epochs: expected int, got 'many'"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(CaptionerError, match="model.kind: must be"):
        load_config(None, ["model.kind=transformer"])


def _copy_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = build_model(ModelConfig(kind="copy", embed=8, hidden=16, copy_k=3), V + 2, D + 1000).eval()
    m.class_word.copy_(torch.arange(1000) % (V + 2 - 4) + 4)  # every class names some real word
    return m


def test_copy_mixture_is_a_distribution_and_gate_zero_is_plain() -> None:
    m = _copy_model()
    feats = torch.randn(3, D + 1000)
    tokens = torch.tensor([[START_IX, 4, 5], [START_IX, 6, END_IX], [START_IX, 7, PAD_IX]])
    logp = m(feats, tokens)  # (B, T, V)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3, 3), rtol=0, atol=1e-5)
    with torch.no_grad():
        m.gate.bias.fill_(-1e4)  # gate closed: the plain Show-and-Tell distribution
    s = m.init_state(feats)
    out, _ = m.lstm(m.embed(tokens), (s["h"][None], s["c"][None]))
    torch.testing.assert_close(m(feats, tokens), m.head(out).log_softmax(-1), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        m.gate.bias.fill_(1e4)  # gate open: only the top-k label words, weighted by the classifier
    p = m(feats, tokens)[:, 0].exp()
    probs, idx = feats[:, D:].softmax(-1).topk(3)
    for b in range(3):
        want = torch.zeros(V + 2).index_add_(0, m.class_word[idx[b]], probs[b] / probs[b].sum())
        torch.testing.assert_close(p[b], want, rtol=1e-4, atol=1e-5)


def test_copy_produces_label_words_outside_the_training_vocabulary(shapes_data: Path, tmp_path: Path) -> None:
    cfg = Config(
        ModelConfig(kind="copy", embed=16, hidden=32, copy_k=5),
        TrainConfig(data=str(shapes_data), out=str(tmp_path / "run"), epochs=1, steps_per_epoch=2),
    )
    d = load_data(cfg)
    prepared = Vocab.load(shapes_data / "vocab.json")
    base = len(prepared)
    assert len(d.vocab) > base  # the class names were appended
    # the concept tables stay, the class names among them: a copied "jacket" is countable, so it gets its "a"
    assert set(prepared.countable) < set(d.vocab.countable) and "jacket" in d.vocab.countable
    assert d.vocab.repeatable == prepared.repeatable and d.vocab.translations == prepared.translations
    oov = [i for i in d.class_word if i >= base]
    assert oov, "some ImageNet class names are outside the shapes vocabulary"
    m = build_model(cfg.model, len(d.vocab), 1280 + 1000).eval()
    m.class_word.copy_(torch.tensor(d.class_word))
    with torch.no_grad():
        m.gate.bias.fill_(1e4)
    feats = torch.from_numpy(d.store.get("pooled+logits", d.train_rows[:2].tolist()))
    first = greedy(S(m, feats), max_len=1)[0].tokens[0]
    assert d.vocab.itos[first] in {d.vocab.itos[i] for i in d.class_word}


def test_epoch_mode_covers_every_caption_once_with_little_padding(shapes_data: Path) -> None:
    from captioner.train.loop import epoch_batches

    cfg = Config(ModelConfig(), TrainConfig(data=str(shapes_data), batch_mode="epoch", batch_size=4))
    d = load_data(cfg)
    d.train_caps = [[[2] + [5] * (i % 7) + [3]] for i in range(len(d.train_caps))]  # varied lengths
    batches = epoch_batches(d, cfg, 0)
    seen = sorted(map(tuple, np.concatenate(batches).tolist()))
    assert seen == sorted(map(tuple, d.pairs.tolist()))  # every (image, caption) exactly once
    spread = [max(len(d.train_caps[i][0]) for i, _ in b) - min(len(d.train_caps[i][0]) for i, _ in b) for b in batches]
    assert max(spread) <= 2  # bucketed by length
    assert [b.tolist() for b in epoch_batches(d, cfg, 0)] == [b.tolist() for b in batches]  # seeded
    assert [b.tolist() for b in epoch_batches(d, cfg, 1)] != [b.tolist() for b in batches]


def test_copy_weight_scales_only_offered_words() -> None:
    from captioner.train.loop import copy_weights

    m = _copy_model()
    feats = torch.zeros(2, D + 1000)
    feats[:, D + 7 : D + 10] = torch.tensor([9.0, 8.0, 7.0])  # top-3 classes 7, 8, 9 offer words 11, 12, 13
    assert m.class_word[7:10].tolist() == [11, 12, 13]
    tokens = torch.tensor([[START_IX, 12, END_IX], [START_IX, 4, PAD_IX]])
    w = copy_weights(m, feats, tokens, 5.0)
    assert w is not None and w.tolist() == [[5.0, 1.0], [1.0, 1.0]]
    assert copy_weights(m, feats, tokens, 1.0) is None
    logits = torch.randn(2, 2, V + 2)
    plain = caption_loss(logits, tokens)
    assert torch.allclose(caption_loss(logits, tokens, weight=torch.ones(2, 2)), plain)  # ones: the usual mean
    doubled = caption_loss(logits, tokens, weight=torch.full((2, 2), 2.0))
    assert torch.allclose(doubled, 2 * plain)


@torch.no_grad()
def test_constrained_beam_search_finds_the_best_caption_with_the_word() -> None:
    import itertools

    from captioner.decode.stepper import masked_logprobs

    model, feats = _model("showtell", 5), _feats("showtell", 1)
    words, must, max_len = range(4, V), {7, 9}, 3

    def logprob(seq: tuple[int, ...]) -> float:
        toks = torch.tensor([[START_IX, *seq]])
        lp = masked_logprobs(model(feats, toks), block_unk=True)[0]  # (n + 1, V)
        return float(sum(lp[i, w] for i, w in enumerate(seq)) + lp[len(seq), END_IX])

    seqs = [s for n in range(1, max_len + 1) for s in itertools.product(words, repeat=n) if must & set(s)]
    best = max(seqs, key=logprob)
    got = constrained_beam_search(S(model, feats), 0, must, beam=600, max_len=max_len)  # wide enough to be exact
    assert got is not None and tuple(got.tokens) == best
    assert got.logprob == pytest.approx(logprob(best), abs=1e-4)
    small = constrained_beam_search(S(model, feats), 0, must, beam=2, max_len=max_len)
    assert small is not None and must & set(small.tokens) and len(small.tokens) <= max_len


@torch.no_grad()
def test_searches_and_scores_together_equal_each_alone() -> None:
    from captioner.decode.constrained import constrained_searches, say_all
    from captioner.decode.stepper import masked_logprobs

    model, feats = _model("showtell", 5), _feats("showtell", 4)
    st = S(model, feats)
    wants = [(2, {7, 9}), (0, {5}), (3, {11}), (0, {7}), (1, {9, 10})]
    together = constrained_searches(st, wants, beam=3, max_len=6)
    alone = [constrained_beam_search(st, i, must, beam=3, max_len=6) for i, must in wants]
    assert [c and c.tokens for c in together] == [c and c.tokens for c in alone]
    assert [c and c.logprob for c in together] == pytest.approx([c and c.logprob for c in alone], abs=1e-5)
    assert constrained_searches(st, [], 3, 6) == []
    said = [(1, [5, 6, 7]), (3, [8]), (0, []), (1, [9, 9, 10, 4])]  # of three lengths, and empty
    for c, (i, toks) in zip(say_all(st, said), said, strict=True):
        lp = masked_logprobs(model(feats[i : i + 1], torch.tensor([[START_IX, *toks]])), block_unk=True)[0]
        teacher = float(sum(lp[j, w] for j, w in enumerate([*toks, END_IX])))  # teacher forcing, one image
        assert c.tokens == toks and c.logprob == pytest.approx(teacher, abs=1e-4)
        assert c.confidence == pytest.approx(c.logprob / (len(toks) + 1))


def test_require_keeps_a_first_caption_that_already_says_a_required_word() -> None:
    from captioner.decode.constrained import Must, require
    from captioner.decode.search import Caption

    class NoSteps:  # any search would start it
        def start(self, rows: np.ndarray) -> None:
            raise AssertionError("searched")

    first = [Caption([5, 7], -1.0, -1 / 3), Caption([6], -2.0, -1.0)]
    got = require(NoSteps(), [first], [Must(frozenset({7, 9}))], beam=3, max_len=6)  # type: ignore[arg-type]
    assert got == [first] and got[0][0] is first[0]
    assert require(NoSteps(), [first], [None], beam=3, max_len=6) == [first]  # type: ignore[arg-type]


def test_copy_threshold_above_one_is_refused() -> None:
    with pytest.raises(CaptionerError, match="model.name_threshold"):
        ModelConfig(kind="copy", name_threshold=1.5)


@pytest.mark.parametrize("kind", ["showtell", "attend", "copy"])
def test_ensemble_mixes_member_probabilities(kind: str) -> None:
    from captioner.models.ensemble import Ensemble

    a, b = _model(kind, seed=0), _model(kind, seed=1)
    feats = _feats(kind, 3)
    tokens = torch.tensor([[START_IX, 4, 5], [START_IX, 6, END_IX], [START_IX, 7, PAD_IX]])
    with torch.no_grad():
        want = (a(feats, tokens).float().softmax(-1) + b(feats, tokens).float().softmax(-1)) / 2
        torch.testing.assert_close(Ensemble([a, b])(feats, tokens).exp(), want, rtol=1e-5, atol=1e-6)
        solo = Ensemble([a]).eval()  # one member: the same captions as the model alone
        assert [c.tokens for c in beam_search(S(solo, feats), 3)[0]] == [
            c.tokens for c in beam_search(S(a, feats), 3)[0]
        ]
        twins = Ensemble([a, _model(kind, seed=0)]).eval()  # identical members: the same as one
        got, ref = beam_search(S(twins, feats), 3, n_best=2), beam_search(S(a, feats), 3, n_best=2)
        assert [[c.tokens for c in cs] for cs in got] == [[c.tokens for c in cs] for cs in ref]
        step, _ = Ensemble([a, b]).step(torch.full((3,), START_IX), Ensemble([a, b]).init_state(feats))
        torch.testing.assert_close(step.exp(), want[:, 0], rtol=1e-5, atol=1e-6)  # step agrees with forward
        best = beam_search(S(Ensemble([a, b]).eval(), feats), 3)[0][0]
    assert Ensemble([a, b]).offers_classes == (kind == "copy")  # copy members keep naming classes
    pair, many = Ensemble([a, b]).eval(), _feats(kind, 5, seed=4)
    beams = beam_search(S(pair, many), 3, max_len=8, n_best=2)
    drawn = sample(S(pair, many), max_len=8, temperature=1.0, seed=5)
    for i in range(5):  # batched equals single for an ensemble of different members, beam and sampling
        assert [c.tokens for c in beam_search(S(pair, many[i : i + 1]), 3, max_len=8, n_best=2)[0]] == [
            c.tokens for c in beams[i]
        ]
        assert sample(S(pair, many[i : i + 1]), max_len=8, temperature=1.0, seed=5)[0].tokens == drawn[i].tokens
    if kind == "attend":  # the members' mean attention, one map per word, each a distribution
        assert len(best.alphas) == len(best.tokens)
        assert all(abs(sum(a) - 1) < 1e-4 for a in best.alphas)


@pytest.mark.parametrize("kind", ["showtell", "attend", "copy"])
def test_no_decoder_ends_on_a_word_that_may_not_end(kind: str) -> None:
    model, feats = _model(kind, 7), _feats(kind, 6)
    with torch.no_grad():
        model.head.bias[END_IX] += 4.0  # a decoder that wants to stop after any word
    no_end = np.zeros(model.head.out_features, dtype=bool)
    no_end[[START_IX, *range(4, 9)]] = True  # "adjectives": #END# may not follow them (nor #START#)

    def endings(mask: np.ndarray | None, max_len: int) -> list[list[int]]:
        st = S(model, feats, mask)
        caps = [c.tokens for c in greedy(st, max_len)]
        caps += [c.tokens for s in range(4) for c in sample(st, max_len, temperature=1.5, seed=s)]
        caps += [c.tokens for b in beam_search(st, 3, max_len, n_best=3) for c in b]
        caps += [c.tokens for c in (constrained_beam_search(st, i, {5}, 3, max_len) for i in range(6)) if c]
        return caps

    free = endings(None, 6)
    assert any(t and no_end[t[-1]] for t in free)  # unruled, it does end on them
    from captioner.decode.search import rollout

    forced, _, _ = rollout(S(model, feats, no_end), 2, lambda lp: lp.argmax(-1))
    cut = [i for i, row in enumerate(forced.tolist()) if row[1] != END_IX and row[2] == END_IX and no_end[row[1]]]
    assert cut  # max_len 2 stops some on such a word...
    ruled = greedy(S(model, feats, no_end), 2)
    assert all(ruled[i].tokens == [w for w in forced[i, :1].tolist() if not no_end[w]] for i in cut)  # ...cut back
    for max_len in (6, 2):  # 2: max_len forces some to stop on such a word, and they are cut back
        caps = endings(no_end, max_len)
        assert caps and all(not t or not no_end[t[-1]] for t in caps)
        assert all(len(t) <= max_len for t in caps)
