"""Frozen-feature logistic regression: the encoder is not trained; its sentence embeddings (the body's own
pooling and normalisation, as sentence-transformers' ``encode`` returns them) feed scikit-learn's
LogisticRegression. This is SetFit's head without SetFit's contrastive body training, so the gap between the
two rows is what the contrastive stage buys.

Defaults: scikit-learn's (C=1.0, L2, lbfgs), which is also what SetFit's head uses; max_iter raised to 1000 so
the solver converges on the whole pool. The embeddings of the train pool and test split are computed once per
(model, dataset, pooling, max length) and shared by every cell.
"""

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt

from benchmark.record import FitResult
from benchmark.registry import register


@register("logreg", default=1, requires=("sklearn.linear_model",))
@dataclass
class LogReg:
    """Frozen encoder embeddings + scikit-learn logistic regression."""

    C: Annotated[float, Gt(0)] = 1.0  # inverse L2 strength; scikit-learn's and SetFit's default
    max_iter: Annotated[int, Ge(1)] = 1000  # scikit-learn's 100 stops short on thousands of examples

    def fit(self, train, ctx) -> FitResult:
        from sklearn.linear_model import LogisticRegression

        self._ctx = ctx
        self._classifier = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=ctx.seed)
        self._classifier.fit(ctx.frozen_features(train.texts), train.labels)
        head = self._classifier.coef_.size + self._classifier.intercept_.size
        return FitResult(trainable_params=head, total_params=ctx.model.num_params + head)

    def precompute(self, ctx) -> None:
        """The embeddings of the train pool and test split, which every cell reads."""
        ctx.frozen_features([])

    def predict(self, texts: list[str]) -> np.ndarray:
        return self._classifier.predict(self._ctx.frozen_features(texts))
