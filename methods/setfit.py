"""SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts"), through the setfit library:
contrastive fine-tuning of the sentence-transformer body on generated same-class / different-class text
pairs (CosineSimilarityLoss), then scikit-learn logistic regression on the fine-tuned body's sentence
embeddings.

Defaults and their sources:
- the paper's protocol: ``num_iterations=20`` (2 x 20 x n pairs: every example gets 20 positive and 20
  negative partners), 1 epoch, batch 16, body learning rate 2e-5, CosineSimilarityLoss, the model's own max
  length (256 for all-MiniLM-L6-v2, as in the paper); not setfit 1.x's own default sampling
  (``--set setfit.num_iterations=none``: "oversampling", every unique pair once, quadratic in the budget);
- warm-up 10% (setfit's ``warmup_proportion``), weight decay 0.01 (setfit's ``l2_weight``), linear decay;
- head: LogisticRegression with scikit-learn's C=1.0 (setfit's head), ``max_iter=1000`` and the cell's seed,
  as the `logreg` method, so the gap between the two rows is what the contrastive stage buys.

Step cap: ``max_steps_per_class`` (default 250) bounds the contrastive steps at 250 per class. The paper's
protocol takes 2 x 20 x N / 16 = 2.5 N steps per class, so it never binds at 8 or 64 per class (20 and 160 per
class) on any number of classes, while on a whole pool it always does (rt-critics: 500 of 28.7k steps, 8,000
pairs, about 1.4 passes of full fine-tuning's work). The cap is passed to setfit only when it binds:
setfit's ``max_steps`` is the Transformers Trainer's, which repeats epochs until it reaches the count.
setfit materialises every pair up front and indexes all n(n+1)/2 combinations: ~2.5 GB of transient memory
on a pool of 11.5k texts, capped or not.

Batches (``group_by_length``, default on): the library shuffles pairs and embeds each column of a batch in its
own forward, padded to its longest text (1.6-2.0x the real tokens on short texts). Here the longer text of
every pair goes in one forward and the shorter in the other (`pairs_by_length_loss`: the cosine is symmetric,
so the loss and gradients are the library's up to dropout sampling), and pairs are grouped by the longer
length, then the shorter (`length_grouped_batches`): 1.1x the real tokens, each pair still used once per epoch
in a random batch. ``--set setfit.group_by_length=false`` restores the library's order and loss (docs/methods.md
has the measurements).

Device: under ``--device cpu`` the library's Trainer is kept on the CPU even where a GPU is visible (it takes
one by default).

Precision: the run's. Under bf16 the body's contrastive training, the head's features and prediction run in
bf16 autocast (setfit's own AMP switch, ``use_amp``, means fp16 and, with Transformers 5, is set after the
Trainer has built its accelerator, so it has no effect). The training's autocast spans every optimizer step, so
it keeps no cache of bf16 weight copies (`Placement.autocast(weights_fixed=False)`): with the cache, every step's
forward and the head's features used the initial weights. The fix changes bf16 cells only (fp32 runs no autocast),
so the revision stays 1 and fp32 records stand; a bf16 SetFit folder made before it needs ``--force``.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt, Lt

from benchmark.record import FitResult
from benchmark.registry import register


@register("setfit", requires=("setfit", "sklearn.linear_model"), default=5, bf16_evidence=1)
@dataclass
class SetFit:
    """SetFit: contrastive fine-tuning of the sentence-transformer body, then a logistic-regression head."""

    num_iterations: Annotated[int, Ge(1)] | None = 20  # pairs per example and sign (paper); None: "oversampling"
    num_epochs: Annotated[int, Ge(1)] = 1  # passes over the generated pairs (paper)
    batch_size: Annotated[int, Ge(1)] = 16  # pairs per step (paper)
    lr: Annotated[float, Gt(0)] = 2e-5  # body learning rate (paper, and setfit's default)
    warmup_ratio: Annotated[float, Ge(0), Lt(1)] = 0.1  # setfit's warmup_proportion
    max_steps_per_class: Annotated[int, Ge(1)] | None = 250  # contrastive steps cap, per class; None: no cap
    group_by_length: bool = True  # batches of pairs of similar length (less padding); False: setfit's shuffle
    C: Annotated[float, Gt(0)] = 1.0  # head's inverse L2 strength; scikit-learn's and SetFit's default
    max_iter: Annotated[int, Ge(1)] = 1000  # head's solver iterations; scikit-learn's 100 stops short on many examples

    def fit(self, train, ctx) -> FitResult:
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
        from setfit import SetFitModel, Trainer, TrainingArguments
        from sklearn.linear_model import LogisticRegression

        self._placement = ctx.placement
        labels = [int(label) for label in train.labels]
        pairs = pair_count(labels, self.num_iterations)
        steps_per_epoch = math.ceil(pairs / self.batch_size)
        uncapped = self.num_epochs * steps_per_epoch
        cap = None if self.max_steps_per_class is None else self.max_steps_per_class * len(set(labels))
        capped = cap is not None and uncapped > cap

        with _quiet(), tempfile.TemporaryDirectory(prefix="fewshot-setfit-") as output_dir:
            # built here, not with SetFitModel.from_pretrained, which asks the Hub about the model id
            body = SentenceTransformer(ctx.model.path, device=ctx.device, trust_remote_code=ctx.model.trust_remote_code)
            body.max_seq_length = ctx.model.max_length
            head = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=ctx.seed)
            self._model = SetFitModel(model_body=body, model_head=head)
            args = TrainingArguments(
                output_dir=output_dir,  # nothing is saved (save_strategy "no"); removed on exit all the same
                num_iterations=self.num_iterations,
                num_epochs=self.num_epochs,
                batch_size=self.batch_size,
                body_learning_rate=self.lr,
                warmup_proportion=self.warmup_ratio,
                max_steps=cap if capped else -1,
                max_length=ctx.model.max_length,
                seed=ctx.seed,
                loss=pairs_by_length_loss() if self.group_by_length else CosineSimilarityLoss,
                show_progress_bar=False,
                report_to="none",
                logging_strategy="no",
                logging_first_step=False,
                save_strategy="no",
            )
            with _trainer_device(ctx.device):
                trainer = Trainer(
                    model=self._model,
                    args=args,
                    train_dataset=Dataset.from_dict({"text": list(train.texts), "label": labels}),
                )
                sampler = length_grouped_batches(body.tokenizer, ctx.model.max_length) if self.group_by_length else None
                _configure(trainer, ctx.device, sampler)
                # the body's training and the head's features, in the run's precision; one context over every
                # optimizer step, so weights are cast afresh at each forward (with autocast's cache, every step and
                # the head's features saw the initial weights: bf16 SetFit lost 12 points at 64 per class)
                with ctx.placement.autocast(weights_fixed=False):
                    trainer.train()
            steps, generated = _trained(trainer)

        body_params = sum(p.numel() for p in body.parameters())
        head_params = head.coef_.size + head.intercept_.size
        resolved = {
            "sampling": f"num_iterations={self.num_iterations}" if self.num_iterations else "oversampling",
            "batches": "length-paired" if self.group_by_length else "shuffled",
            "pairs": generated,
            "steps": steps,
            "steps_uncapped": uncapped,
            "step_cap_applied": capped,
            "epochs": round(steps / math.ceil(generated / self.batch_size), 4),
            "max_length": ctx.model.max_length,
        }
        return FitResult(body_params + head_params, body_params + head_params, resolved)

    def predict(self, texts: list[str]) -> np.ndarray:
        with self._placement.autocast():
            predictions = self._model.predict(
                list(texts), batch_size=64, as_numpy=True, use_labels=False, show_progress_bar=False
            )
        return np.asarray(predictions, dtype=np.int64)


def pair_count(labels: list[int], num_iterations: int | None) -> int:
    """How many pairs setfit 1.x's ContrastiveDataset generates for single-label `labels`, without
    building them.

    With num_iterations: 2 x num_iterations x n. Without ("oversampling"): twice the larger of the positive
    pairs (same class, self-pairs included: combinations with replacement) and the negative pairs."""
    if num_iterations is not None and num_iterations > 0:
        return 2 * num_iterations * len(labels)
    sizes = list(Counter(labels).values())
    positive = sum(size * (size + 1) // 2 for size in sizes)
    negative = (len(labels) ** 2 - sum(size * size for size in sizes)) // 2
    return 2 * max(positive, negative)


def length_grouped_batches(tokenizer, max_length: int):
    """A sentence-transformers ``batch_sampler`` for setfit's pair dataset that batches pairs of similar length.

    Each side of a pair batch is embedded in its own forward, padded to its longest text; with shuffled
    batches of short snippets that is ~1.65x the real tokens (measured on the 64-per-class Rotten Tomatoes
    pairs). `PairsByLength` embeds the longer text of every pair in one forward and the shorter in the other,
    and this sampler groups pairs by the longer length, then the shorter (`modeling.train_batches`): ~1.09x.
    Every pair is still used exactly once per epoch, and batch order and membership stay random, reshuffled
    every epoch from the cell's seed."""
    from sentence_transformers.base.sampler import DefaultBatchSampler

    from benchmark.modeling import train_batches

    class LengthGroupedBatchSampler(DefaultBatchSampler):
        def __init__(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
            super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
            first, second = list(dataset["sentence_1"]), list(dataset["sentence_2"])
            texts = list(dict.fromkeys(first + second))
            ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
            length = dict(zip(texts, map(len, ids), strict=True))
            first_lengths = np.array([length[text] for text in first])
            second_lengths = np.array([length[text] for text in second])
            self.longer = np.maximum(first_lengths, second_lengths)
            self.shorter = np.minimum(first_lengths, second_lengths)

        def __iter__(self):
            rng = np.random.default_rng([self.seed, self.epoch])
            for batch in train_batches(self.longer, self.batch_size, rng, shorter=self.shorter):
                if len(batch) == self.batch_size or not self.drop_last:
                    yield batch.tolist()

    return LengthGroupedBatchSampler


def pairs_by_length_loss():
    """setfit's CosineSimilarityLoss with the two forwards of a pair batch split by length, not by column: the
    longer text of every pair goes in one forward, the shorter in the other. The cosine is symmetric and each
    text is embedded on its own, so the loss and gradients are the library's, up to dropout sampling; only the
    padding shrinks (with `length_grouped_batches`). Needs right padding; otherwise it embeds by column."""
    import torch
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    class PairsByLength(CosineSimilarityLoss):
        def forward(self, sentence_features, labels):
            first, second = sentence_features
            masks = first["attention_mask"], second["attention_mask"]
            if not all(bool(mask[:, 0].all()) for mask in masks):
                return super().forward(sentence_features, labels)  # left padding: rows cannot be re-cut
            swap = (masks[0].sum(1) < masks[1].sum(1))[:, None]
            width = max(mask.shape[1] for mask in masks)
            longer, shorter = dict(first), dict(first)
            for key in _token_keys(first):
                a, b = (torch.nn.functional.pad(side[key], (0, width - side[key].shape[1])) for side in (first, second))
                longer[key], shorter[key] = torch.where(swap, b, a), torch.where(swap, a, b)
            embeddings = [self.model(_trimmed(side))["sentence_embedding"] for side in (longer, shorter)]
            return self.compute_loss_from_embeddings(embeddings, labels)

    return PairsByLength


def _token_keys(features: dict) -> list[str]:
    """The per-token tensors of a tokenised batch (input_ids, attention_mask, token_type_ids, ...)."""
    rows = features["attention_mask"].shape[0]
    return [k for k, v in features.items() if getattr(v, "ndim", 0) == 2 and v.shape[0] == rows]


def _trimmed(features: dict) -> dict:
    """`features` without the trailing columns that are padding in every row."""
    width = int(features["attention_mask"].sum(1).max())
    return features | {key: features[key][:, :width] for key in _token_keys(features)}


@contextlib.contextmanager
def _quiet():
    """No progress bars (model loading, dataset mapping) and no setfit INFO chatter while fitting; the
    previous settings are restored afterwards. setfit switches its own logger to INFO when it is imported."""
    import datasets.utils
    import setfit.logging
    import transformers.utils.logging

    verbosity = setfit.logging.get_verbosity()
    datasets_bars = not datasets.utils.are_progress_bars_disabled()
    transformers_bars = transformers.utils.logging.is_progress_bar_enabled()
    setfit.logging.set_verbosity_warning()
    datasets.utils.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        setfit.logging.set_verbosity(verbosity)
        if datasets_bars:
            datasets.utils.enable_progress_bars()
        if transformers_bars:
            transformers.utils.logging.enable_progress_bar()


@contextlib.contextmanager
def _trainer_device(device: str):
    """setfit builds its Transformers Trainer without a device argument, so that Trainer (through accelerate)
    takes any GPU it sees even under ``--device cpu``. ``ACCELERATE_USE_CPU`` is the switch both read; it is
    set only while the Trainer is built and trains, and restored afterwards."""
    if not device.startswith("cpu"):
        yield
        return
    before = os.environ.get("ACCELERATE_USE_CPU")
    os.environ["ACCELERATE_USE_CPU"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ACCELERATE_USE_CPU", None)
        else:
            os.environ["ACCELERATE_USE_CPU"] = before


# setfit 1.2's public API (Trainer, TrainingArguments) has no switch for three things this method needs: the batch
# sampler of the contrastive phase (length-grouped pairs), pinned memory (pointless on a CPU, where torch warns),
# and what the phase did (steps run, pairs generated). setfit exposes the sentence-transformers trainer it drives
# as `Trainer.st_trainer`; these two functions are the only places that reach it (docs/methods.md, SetFit).


def _configure(trainer, device: str, batch_sampler) -> None:
    """No progress bars or log lines of the Trainer under setfit; no pinned memory on a CPU; the batch sampler."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.st_trainer.args.dataloader_pin_memory = not device.startswith("cpu")
    if batch_sampler is not None:
        trainer.st_trainer.args.batch_sampler = batch_sampler


def _trained(trainer) -> tuple[int, int]:
    """(optimizer steps the contrastive phase ran, pairs it generated)."""
    return trainer.st_trainer.state.global_step, len(trainer.st_trainer.train_dataset)
