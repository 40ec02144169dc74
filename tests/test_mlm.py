"""The `mlm` method's machinery on the tiny BERT: BERT's masking, the masked-positions-only head, and the
adapted encoder's caches (memory, disk, file lock), which must train once per key and never per cell."""

import math
import threading

import numpy as np
import pytest
import torch
from conftest import synthetic_rows

from benchmark.context import Context
from benchmark.data.tasks import Split
from benchmark.grid import cache
from benchmark.grid.cache import OneOffCache
from benchmark.modeling import Tokens, load_body, load_tokenizer
from methods import mlm

CONFIG = mlm.MLMConfig(epochs=1, lr=1e-3, batch_size=8, mask_rate=0.15, warmup_ratio=0.0, weight_decay=0.01, seed=0)
TEXTS = [text for text, _ in synthetic_rows(20, seed=3)]


@pytest.fixture()
def trainings(monkeypatch):
    """Counts calls of the training function."""
    calls = []
    real = mlm.train_mlm

    def counting(ctx, config):
        calls.append(config)
        return real(ctx, config)

    monkeypatch.setattr(mlm, "train_mlm", counting)
    counting.calls = calls
    return counting


def context(spec, cache_dir, texts=TEXTS) -> Context:
    return Context(spec, num_labels=2, seed=7, unlabelled=list(texts), cache=OneOffCache(cache_dir))


def batch(spec, texts=TEXTS[:16]):
    tokenizer = load_tokenizer(spec)
    return tokenizer, *Tokens.of(tokenizer, texts, spec.max_length).batch(np.arange(len(texts)), "cpu")


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_masking_picks_15_percent_of_ordinary_tokens_and_corrupts_them_80_10_10():
    rows, width, vocab, mask_id = 4000, 22, 1000, 4
    input_ids = torch.randint(10, vocab, (rows, width))
    lengths = torch.randint(8, width + 1, (rows,))
    attention_mask = (torch.arange(width) < lengths[:, None]).long()
    input_ids[:, 0] = 2  # [CLS]
    input_ids[torch.arange(rows), lengths - 1] = 3  # [SEP]
    input_ids[attention_mask == 0] = 0  # [PAD]
    generator = torch.Generator().manual_seed(0)

    corrupted, picked = mlm.mask_tokens(input_ids, attention_mask, [0, 1, 2, 3, 4], mask_id, vocab, 0.15, generator)

    maskable = (attention_mask == 1) & (input_ids >= 10)
    assert not (picked & ~maskable).any()  # never [CLS], [SEP] or padding
    assert torch.equal(corrupted[~picked], input_ids[~picked])
    assert (picked.sum(1) >= 1).all()
    assert picked.sum() / maskable.sum() == pytest.approx(0.15, abs=0.01)
    became_mask = (corrupted[picked] == mask_id).float().mean()
    became_other = ((corrupted[picked] != mask_id) & (corrupted[picked] != input_ids[picked])).float().mean()
    assert became_mask == pytest.approx(0.8, abs=0.02)
    assert became_other == pytest.approx(0.1, abs=0.02)  # the rest (~10%) keep their token


def test_head_on_picked_positions_gives_the_stock_masked_lm_loss_and_gradients(tiny_spec):
    model, body, head = mlm.load_masked_lm(tiny_spec)
    model.eval()  # no dropout, so both passes see the same network
    tokenizer, input_ids, attention_mask = batch(tiny_spec)
    corrupted, picked = mlm.mask_tokens(
        input_ids,
        attention_mask,
        tokenizer.all_special_ids,
        tokenizer.mask_token_id,
        model.config.vocab_size,
        0.15,
        torch.Generator().manual_seed(1),
    )

    stock = model(input_ids=corrupted, attention_mask=attention_mask, labels=torch.where(picked, input_ids, -100))
    stock.loss.backward()
    stock_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    ours = mlm.masked_lm_loss(body, head, corrupted, attention_mask, input_ids, picked)
    ours.backward()

    assert ours.item() == pytest.approx(stock.loss.item(), rel=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, stock_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_masked_lm_decoder_is_tied_to_the_word_embeddings(tiny_spec):
    model, body, _ = mlm.load_masked_lm(tiny_spec)
    assert model.get_output_embeddings().weight is body.get_input_embeddings().weight


def test_adapted_body_is_the_bare_model_with_changed_weights(tiny_spec):
    original = state(load_body(tiny_spec))
    body, facts = mlm.adapted_body(context(tiny_spec, None), CONFIG)
    weights = state(body)

    assert type(body) is type(load_body(tiny_spec)) and weights.keys() == original.keys()
    assert not torch.equal(weights["embeddings.word_embeddings.weight"], original["embeddings.word_embeddings.weight"])
    assert not torch.equal(
        weights["encoder.layer.3.output.dense.weight"], original["encoder.layer.3.output.dense.weight"]
    )
    assert facts["steps"] == len(TEXTS) // CONFIG.batch_size
    assert np.isfinite(facts["final_loss"])


def test_second_request_reuses_the_encoder_from_memory_then_from_disk(tiny_spec, tmp_path, trainings):
    ctx = context(tiny_spec, tmp_path)
    trained, _ = mlm.adapted_body(ctx, CONFIG)
    again, _ = mlm.adapted_body(ctx, CONFIG)
    cache.clear_memory()
    loaded, _ = mlm.adapted_body(ctx, CONFIG)

    assert len(trainings.calls) == 1
    built, from_memory, from_disk = ctx.uses
    assert built.seconds_here >= built.cost.seconds > 0 and from_memory.seconds_here == 0
    assert from_disk.cost.seconds == built.cost.seconds  # the original cost, kept on disk
    expected = state(trained)
    for body in (again, loaded):
        assert body is not trained
        assert all(torch.equal(v, expected[k]) for k, v in state(body).items())


def test_a_process_holding_the_encoder_still_leaves_it_in_another_cache_folder(tiny_spec, tmp_path, trainings):
    # a second grid in one process (another --cache-dir): its workers load the encoder from that folder
    mlm.adapted_body(context(tiny_spec, tmp_path / "first"), CONFIG)
    mlm.adapted_body(context(tiny_spec, tmp_path / "second"), CONFIG)
    assert [len(list((tmp_path / f / "mlm").glob("*/mlm.json"))) for f in ("first", "second")] == [1, 1]


def test_other_mlm_hyperparameters_or_other_texts_train_again(tiny_spec, tmp_path, trainings):
    mlm.adapted_body(context(tiny_spec, tmp_path), CONFIG)
    mlm.adapted_body(context(tiny_spec, tmp_path), mlm.MLMConfig(**{**CONFIG.__dict__, "lr": 5e-4}))
    mlm.adapted_body(context(tiny_spec, tmp_path, TEXTS[:-1]), CONFIG)
    assert len(trainings.calls) == 3
    assert len(list((tmp_path / "mlm").glob("*/mlm.json"))) == 3


def test_without_a_cache_dir_each_configuration_is_trained_once_per_process(tiny_spec, trainings):
    """Cells of two MLM configurations interleave in a grid (budget, then seed, then method)."""
    other = mlm.MLMConfig(**{**CONFIG.__dict__, "epochs": 2})
    for config in [CONFIG, other] * 2:
        mlm.adapted_body(context(tiny_spec, None), config)
    assert trainings.calls == [CONFIG, other]


def test_concurrent_requests_for_one_key_train_once(tiny_spec, tmp_path, monkeypatch):
    """The second caller waits on the file lock while the first trains, then loads from disk. The first caller's
    training does not begin until the second has reached the lock: the overlap is certain, not timed."""
    from benchmark.grid import cache

    at_the_lock, training, calls = threading.Semaphore(0), threading.Event(), []
    real_exclusive, real_train = cache.exclusive, mlm.train_mlm

    def exclusive(path):
        at_the_lock.release()
        return real_exclusive(path)

    def train(ctx, config):
        calls.append(config)
        training.set()
        assert at_the_lock.acquire(timeout=600) and at_the_lock.acquire(timeout=600)  # both callers are there
        return real_train(ctx, config)

    monkeypatch.setattr(cache, "exclusive", exclusive)
    monkeypatch.setattr(mlm, "train_mlm", train)
    errors = []

    def request():
        try:
            mlm.adapted_body(context(tiny_spec, tmp_path), CONFIG)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's own thread
            errors.append(exc)

    first, second = threading.Thread(target=request), threading.Thread(target=request)
    first.start()
    assert training.wait(timeout=600)  # the first holds the lock and trains; nothing is in memory yet
    second.start()
    first.join()
    second.join()

    assert errors == [] and len(calls) == 1
    assert [p.name for p in (tmp_path / "mlm").iterdir() if p.is_dir()] == [
        mlm.cache_key(tiny_spec, TEXTS, CONFIG, "fp32")
    ]  # no scratch folder left behind


def test_fit_merges_the_mlm_facts_into_resolved_and_the_cost_is_the_harnesss(tiny_spec, tmp_path):
    from methods.mlm import Mlm

    rows = synthetic_rows(4, seed=5)
    train = Split([t for t, _ in rows], np.array([int(label == "pos") for _, label in rows]))
    method = Mlm(mlm_epochs=1, max_epochs=2, min_steps=2)
    ctx = context(tiny_spec, tmp_path)

    first = method.fit(train, ctx)
    Mlm(mlm_epochs=1, max_epochs=2, min_steps=2).fit(train, ctx)

    assert {"epochs", "steps", "batch_size"} <= first.resolved.keys()
    assert first.resolved["mlm_steps"] == math.ceil(len(TEXTS) / method.mlm_batch_size)
    built, reused = ctx.uses
    assert (built.kind, reused.kind) == ("mlm", "mlm") and reused.cost.seconds == built.cost.seconds > 0


def test_training_or_loading_the_encoder_leaves_the_cells_random_state_alone(tiny_spec, tmp_path):
    """So a cell's head initialisation and dropout are the same whether the encoder was trained or loaded."""
    torch.manual_seed(7)
    before = torch.get_rng_state()
    for _ in range(2):  # a miss, then a hit
        mlm.adapted_body(context(tiny_spec, tmp_path), CONFIG)
        assert torch.equal(torch.get_rng_state(), before)


def test_with_an_unchanged_encoder_mlm_fine_tunes_exactly_as_full(tiny_spec, tmp_path, monkeypatch):
    """Whatever separates `mlm` from `full` in the leaderboard is the masked-LM stage: the fine-tune after it
    is `full`'s, down to the head's initialisation, dropout and batch order."""
    from methods.full import Full
    from methods.mlm import Mlm

    unchanged = {"final_loss": 0.0, "epoch_losses": [], "texts": 0, "epochs": 0, "steps": 0}
    monkeypatch.setattr(mlm, "adapted_body", lambda ctx, config: (load_body(ctx.model), unchanged))
    rows = synthetic_rows(6, seed=5)
    train = Split([t for t, _ in rows], np.array([int(label == "pos") for _, label in rows]))
    test = [t for t, _ in synthetic_rows(10, seed=6)]
    predictions = []
    for method in (Full(max_epochs=3, min_steps=3), Mlm(max_epochs=3, min_steps=3)):
        torch.manual_seed(7)  # as the runner seeds every cell
        method.fit(train, context(tiny_spec, tmp_path))
        predictions.append((method.predict(test), state(method._model)))
    assert np.array_equal(predictions[0][0], predictions[1][0])
    assert all(torch.equal(value, predictions[1][1][name]) for name, value in predictions[0][1].items())
