"""Model plumbing every method shares, so that differences in the table come from the method, not from here.
Methods import it as `benchmark.modeling` (every name below is re-exported here).

- `spec`: `ModelSpec` and `resolve_model`: where the encoder lives, its pooling, max length and normalisation.
- `load`: its tokenizer and body (safetensors only); `preload`, the imports before a process's first cell.
- `batches`: tokens once, unpadded; length-bucketed batches for training and inference.
- `modules`: encoder body + its own pooling + dropout + linear head; its blocks; parameter counts.
- `training`: the one training loop (`train`), `fine_tune` with the budget rule of `Schedule`, `Placement`.
- `inference`: `predict_logits` and `embed`, in length-sorted batches, returned in input order.

May import: `benchmark.errors`, `benchmark.progress` (torch and transformers inside functions); nothing above.
"""

from benchmark.modeling.batches import Tokens, Vectors, inference_batches, train_batches
from benchmark.modeling.inference import embed, predict_logits
from benchmark.modeling.load import load_body, load_tokenizer, preload, quiet_transformers
from benchmark.modeling.modules import build_classifier, build_head, count_params, encoder_blocks, pool
from benchmark.modeling.spec import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_PACKAGE,
    WEIGHT_FILES,
    ModelSpec,
    Pooling,
    read_model_folder,
    resolve_model,
)
from benchmark.modeling.training import Optimization, Placement, Schedule, adamw, fine_tune, seed_everything, train

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_PACKAGE",
    "Pooling",
    "WEIGHT_FILES",
    "ModelSpec",
    "resolve_model",
    "read_model_folder",
    "load_tokenizer",
    "quiet_transformers",
    "load_body",
    "preload",
    "Tokens",
    "Vectors",
    "train_batches",
    "inference_batches",
    "pool",
    "build_head",
    "build_classifier",
    "encoder_blocks",
    "count_params",
    "Placement",
    "Schedule",
    "Optimization",
    "adamw",
    "train",
    "fine_tune",
    "seed_everything",
    "predict_logits",
    "embed",
]
