"""The classifier every gradient method trains: the encoder body, the body's own pooling, dropout and a linear head;
the body's blocks; parameter counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.modeling.spec import Pooling

if TYPE_CHECKING:
    import torch


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
