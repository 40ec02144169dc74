"""Full fine-tuning: every encoder weight and a new linear head train on the labelled sample.

Defaults (see `methods.finetune.FineTune`): AdamW at 5e-5 with 10% linear warm-up and weight decay 0.01
(Devlin et al. 2019; the Transformers Trainer recipe), batch 16 (the SetFit paper's fine-tuning baseline),
dropout 0.1 on the pooled vector (BERT's head). Budget rule: epochs = clamp(ceil(100 / steps per epoch), 1, 50),
so 8 per class gets 50 epochs of one step, 64 per class 13 epochs (104 steps), the whole pool 1 epoch (718
steps on the embedded default). One epoch over the whole pool is the protocol of Hands-On LLMs ch. 11
(bert-base-cased on Rotten Tomatoes' 8.5k training reviews: 1 epoch, batch 16); BERT's paper used 2-4 epochs
on GLUE. The floor binds only from ~800 labelled examples, so 8 and 64 per class train the same either way.
"""

from dataclasses import dataclass

from benchmark.registry import register
from methods.finetune import FineTune


@register("full", default=2, bf16_evidence=1)
@dataclass
class Full(FineTune):
    """Full fine-tuning of the encoder and a new linear head."""
