"""The one training loop every gradient method runs (AdamW, warm-up then linear decay, clipping, length-bucketed
batches), `fine_tune` (its cross-entropy use with the budget rule of `Schedule`), where a model runs
(`Placement`: device and precision) and seeding."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from benchmark import progress
from benchmark.errors import NonFiniteLossError
from benchmark.modeling.batches import train_batches

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Placement:
    """Where a model runs and in which precision ("fp32", or "bf16" autocast)."""

    device: str = "cpu"
    precision: str = "fp32"

    def autocast(self, weights_fixed: bool = True):
        """bf16 autocast, or nothing in fp32. Autocast keeps the bf16 copy of each weight it casts until its
        outermost context ends: right for a forward pass or a prediction, wrong for a context that spans optimizer
        steps, whose later forwards would see the first step's weights. Such a context passes
        `weights_fixed=False`: weights are cast again at every use."""

        import torch

        if self.precision == "bf16":
            device_type = torch.device(self.device).type
            return torch.autocast(device_type=device_type, dtype=torch.bfloat16, cache_enabled=weights_fixed)
        return contextlib.nullcontext()


@dataclass(frozen=True)
class Schedule:
    """The budget rule shared by the gradient methods.

    epochs = clamp(ceil(min_steps / steps_per_epoch), min_epochs, max_epochs): a few-shot sample gets many
    passes (enough optimizer steps to move the weights), a large pool gets few (it has steps to spare)."""

    batch_size: int
    min_steps: int
    min_epochs: int
    max_epochs: int

    def resolve(self, n_train: int) -> dict[str, int]:
        batch_size = min(self.batch_size, n_train)
        steps_per_epoch = math.ceil(n_train / batch_size)
        epochs = min(self.max_epochs, max(self.min_epochs, math.ceil(self.min_steps / steps_per_epoch)))
        return {"epochs": epochs, "steps": epochs * steps_per_epoch, "batch_size": batch_size}


@dataclass(frozen=True)
class Optimization:
    """AdamW's peak rate and weight decay, and the share of steps spent warming up."""

    lr: float
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1


def adamw(params: list, lr: float, weight_decay: float, device: str):
    """AdamW with BERT's grouping (no decay on biases and LayerNorm weights), fused where torch has a fused
    kernel: on CPU that cuts the optimizer step over 22M parameters ~8x (unfused, it costs as much as the
    forward pass of a batch of 16)."""
    import torch

    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, fused=torch.device(device).type in ("cpu", "cuda"))


def train(
    model,
    batches: Callable[[], Iterable[np.ndarray]],
    loss_of: Callable[[np.ndarray], torch.Tensor | None],
    epochs: int,
    steps: int,
    optimization: Optimization,
    placement: Placement,
    what: str = "loss",
) -> list[list[float]]:
    """The one training loop: `epochs` passes over `batches()` (called once per epoch), one optimizer step per
    batch whose `loss_of` is not None, over the model's trainable parameters. AdamW, linear warm-up over
    `warmup_ratio` of `steps` then linear decay, gradient clipping at 1.0. The model trains in train mode and
    is left in eval mode. Raises NonFiniteLossError at the first NaN/inf loss. Returns each epoch's step losses.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(params, optimization.lr, optimization.weight_decay, placement.device)
    warmup = int(optimization.warmup_ratio * steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, steps)
    model.to(placement.device).train()
    losses: list[list[float]] = []
    done = 0
    for _ in range(epochs):
        epoch = []
        for index in batches():
            done += 1
            progress.report(what.replace("loss", "training steps").strip(), done, steps)
            with placement.autocast():
                loss = loss_of(index)
            if loss is None:
                continue
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"{what} became {loss.item()} during training")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            epoch.append(loss.detach())
        losses.append(torch.stack(epoch).float().tolist() if epoch else [])
    model.eval()
    return losses


def fine_tune(
    model,
    inputs,
    labels: np.ndarray,
    schedule: Schedule,
    optimization: Optimization,
    placement: Placement,
    seed: int,
) -> dict[str, int]:
    """Cross-entropy training of `model` on `inputs` (`Tokens`, or anything with ``lengths``, ``len`` and
    ``batch(index, device)`` returning the model's positional inputs). Batches are length-bucketed by
    `inputs.lengths`, shuffled by a generator seeded with `seed`. Returns the resolved schedule for the record."""
    import torch

    resolved = schedule.resolve(len(inputs))
    rng = np.random.default_rng(seed)
    targets = torch.as_tensor(labels, dtype=torch.long)
    lengths = inputs.lengths

    def loss_of(index: np.ndarray) -> torch.Tensor:
        logits = model(*inputs.batch(index, placement.device))
        return torch.nn.functional.cross_entropy(logits.float(), targets[index].to(placement.device))

    train(
        model,
        lambda: train_batches(lengths, resolved["batch_size"], rng),
        loss_of,
        resolved["epochs"],
        resolved["steps"],
        optimization,
        placement,
    )
    return resolved


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
