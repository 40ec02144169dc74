"""Does masked-LM training change the frozen sentence features that every fine-tune starts from?

A linear probe (the `logreg` method: logistic regression on the body's normalised mean-pooled features) on the
original encoder and on the `mlm` method's adapted encoder, over the benchmark's own paired samples. The
adapted encoder comes from the same cache the benchmark uses (trained first if missing: ~5-8 min on 2 cores).

    python scripts/probe_mlm_features.py [--mlm-epochs 1] [--shots 8,64] [--seeds 3] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlm-epochs", type=int, default=1)
    parser.add_argument("--shots", default="8,64")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cache-dir", default=None, help="default: the benchmark's (FEWSHOT_BENCH_CACHE)")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from benchmark import mlm, modeling
    from benchmark.cli import default_cache
    from benchmark.context import Context
    from benchmark.data import load_task
    from benchmark.sampling import parse_shots, sample
    from methods.mlm import Mlm

    task = load_task("rt-critics")
    spec = modeling.resolve_model(None)
    budgets = parse_shots(args.shots)
    samples = {(shots, seed): sample(task, shots, seed) for shots in budgets for seed in range(args.seeds)}
    texts = list(dict.fromkeys([t for s in samples.values() for t in s.texts] + list(task.test.texts)))
    row = {text: i for i, text in enumerate(texts)}
    tokens = modeling.Tokens.of(modeling.load_tokenizer(spec), texts, spec.max_length)
    ctx = Context(
        spec, task.num_labels, seed=0, unlabelled=list(task.train.texts), cache_dir=args.cache_dir or default_cache()
    )

    adapted, how = mlm.adapted_body(ctx, Mlm(mlm_epochs=args.mlm_epochs).mlm_config())
    bodies = {"original": modeling.load_body(spec), f"mlm-{args.mlm_epochs} (loss {how.facts['final_loss']})": adapted}
    print("linear probe on frozen normalised mean-pooled features, rt-critics test split, macro-F1 mean ± std")
    for name, body in bodies.items():
        started = time.perf_counter()
        features = modeling.embed(body.eval(), tokens, ctx, spec.pooling, normalize=True)
        test = features[[row[t] for t in task.test.texts]]
        for shots in budgets:
            scores = []
            for seed in range(args.seeds):
                train = samples[(shots, seed)]
                probe = LogisticRegression(max_iter=1000, random_state=seed)
                probe.fit(features[[row[t] for t in train.texts]], train.labels)
                scores.append(f1_score(task.test.labels, probe.predict(test), average="macro"))
            print(
                f"{name:24s} {shots!s:>4} per class  {np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f}"
                f"  seeds {[round(s, 3) for s in scores]}  ({time.perf_counter() - started:.0f} s)"
            )


if __name__ == "__main__":
    main()
