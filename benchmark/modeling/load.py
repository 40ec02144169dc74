"""Loading what a `ModelSpec` names: its tokenizer and body (safetensors only), and `preload`, the imports a process
does before its first cell so that no cell's time includes them."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.modeling.spec import ModelSpec

if TYPE_CHECKING:
    pass


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
