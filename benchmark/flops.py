"""Useful FLOPs of the encoder work a process does, counted where it happens, whatever code calls the encoder
(the harness's loops, setfit's trainer, sentence-transformers' encode): a process-wide forward hook adds the
work of each call of a Hugging Face base encoder (or of the sentence-transformers module wrapping one, which
calls its encoder's ``forward`` directly, past any hook) to one counter, which the harness reads around a
cell's fit and predict and around one-off work.

The model (as `benchmark.speed` reports efficiency): a sequence of L real tokens costs, through the encoder,
F(L) = 2 x P x L + 4 x layers x d x L^2, where P is the weights of the blocks' linear layers and the L^2 term is
attention (QK^T and AV). Padding is not useful work and is not counted. A call with gradients also pays the
backward pass through the blocks from the lowest one holding a trainable weight to the top: gradients of
their linear layers' inputs (2 x their weights x L) and of both operands of attention (8 x d x L^2 a block), and
gradients of the trainable linear weights (2 x their weights x L). So full fine-tuning costs 3F per text,
a frozen lower half about 2F, LoRA's adapters about 2F, inference F. Outside the count: task heads, the
masked-LM vocabulary head, embeddings (lookups), optimizer steps, dropout.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

_total = 0.0
_installed = False
_inside_wrapper = 0  # sentence-transformers modules running: their encoder's own calls are theirs
_shapes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # encoder -> (blocks, linear weights per block)


def total() -> float:
    """Useful FLOPs counted in this process so far."""
    return _total


def install() -> None:
    """Count from now on, in this process (once; cheap enough to stay on)."""
    global _installed
    if _installed:
        return
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    register_module_forward_pre_hook(_enter)
    register_module_forward_hook(_count, with_kwargs=True)
    _installed = True


def _is_wrapper(module) -> bool:
    """A sentence-transformers Transformer module: ``auto_model`` is its encoder."""
    return isinstance(getattr(type(module), "auto_model", None), property)


def _is_encoder(module) -> bool:
    return (
        hasattr(type(module), "base_model")
        and module.base_model is module
        and hasattr(module.config, "num_hidden_layers")
    )


def _enter(module, args) -> None:
    global _inside_wrapper
    if _is_wrapper(module):
        _inside_wrapper += 1


def _count(module, args, kwargs, output) -> None:
    global _inside_wrapper
    if _is_wrapper(module):
        _inside_wrapper -= 1
        features = args[0] if args and isinstance(args[0], Mapping) else {}  # a dict, or a BatchEncoding
        _add(module.auto_model, _lengths((), features))
    elif not _inside_wrapper and _is_encoder(module):
        _add(module, _lengths(args, kwargs))


def _add(encoder, lengths) -> None:
    global _total
    if lengths is None:
        return
    module = encoder
    blocks, linear = _shape(module)
    per_weight = 2.0 * float(lengths.sum())  # per weight of a linear layer: a multiply and an add per token
    attention = 4.0 * module.config.hidden_size * float((lengths.double() ** 2).sum())  # per block
    work = per_weight * sum(linear) + attention * len(blocks)
    if module.training and _grad_enabled():
        trainable = [any(p.requires_grad for p in block.parameters()) for block in blocks]
        if any(trainable):
            lowest = trainable.index(True)
            work += per_weight * sum(linear[lowest:]) + 2 * attention * (len(blocks) - lowest)
            work += per_weight * sum(
                m.weight.numel()
                for block in blocks
                for m in block.modules()
                if _is_linear(m) and m.weight.requires_grad
            )
    _total += work


def _lengths(args, kwargs):
    mask = kwargs.get("attention_mask")
    if mask is None and len(args) > 1:
        mask = args[1]
    if mask is not None:
        return mask.sum(1)
    ids = kwargs.get("input_ids", args[0] if args else None)
    if ids is None or getattr(ids, "ndim", 0) != 2:
        return None
    import torch

    return torch.full((ids.shape[0],), ids.shape[1])


def _shape(encoder) -> tuple[list, list[int]]:
    if encoder not in _shapes:
        from benchmark.modeling import encoder_blocks

        blocks = encoder_blocks(encoder)
        linear = [sum(m.weight.numel() for m in block.modules() if _is_linear(m)) for block in blocks]
        _shapes[encoder] = (blocks, linear)
    return _shapes[encoder]


def _is_linear(module) -> bool:
    from torch import nn

    return isinstance(module, nn.Linear)


def _grad_enabled() -> bool:
    import torch

    return torch.is_grad_enabled()
