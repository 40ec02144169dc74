"""How many tokens SetFit's pair batches compute, per real token, and what a training step costs.

On the embedded default's paired samples, for setfit's pairs (the paper's 20 iterations): padded/real tokens
with the library's shuffled batches (each column in its own forward), with pairs grouped by the longer text
alone, and as the `setfit` method batches them (`length_grouped_batches` + `pairs_by_length_loss`: the longer
texts of a batch in one forward, the shorter in the other). With ``--steps N``, it also times N training
steps of the last two on one thread, interleaved step by step in one process so that the host's drift hits
both alike (``methods/setfit.py`` quotes 100 steps at 64 per class).

    python scripts/setfit_pair_padding.py [--shots 8,64] [--seeds 3] [--steps 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", default="8,64")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, default=0, help="time this many steps of each batching, on the last sample (default: 0)"
    )
    args = parser.parse_args()

    from datasets import Dataset
    from setfit.sampler import ContrastiveDataset

    from benchmark import data, modeling, sampling
    from methods.setfit import length_grouped_batches

    task = data.load_rt_critics()
    spec = modeling.resolve_model(None)
    tokenizer = modeling.load_tokenizer(spec)
    for shots in sampling.parse_shots(args.shots):
        for seed in range(args.seeds):
            train = sampling.sample(task, shots, seed)
            pairs = Dataset.from_list(
                list(ContrastiveDataset(list(train.texts), [int(y) for y in train.labels], None, 20))
            )
            paired = length_grouped_batches(tokenizer, spec.max_length)(pairs, 16, False, seed=seed)
            first, second = (
                modeling.Tokens.of(tokenizer, list(pairs[side]), spec.max_length).lengths
                for side in ("sentence_1", "sentence_2")
            )
            rng = np.random.default_rng(seed)
            shuffled = np.array_split(rng.permutation(len(first)), len(paired))
            by_longer = modeling.train_batches(paired.longer, 16, rng)
            print(
                f"{shots}/class seed {seed}: {len(first)} pairs; padded/real tokens: shuffled "
                f"{padding(first, second, shuffled):.3f}, grouped by the longer text "
                f"{padding(first, second, by_longer):.3f}, as the method batches them "
                f"{padding(paired.longer, paired.shorter, list(paired)):.3f}"
            )
    if args.steps:  # on the last sample printed
        time_steps(pairs, by_longer, list(paired), args.steps)


def padding(first: np.ndarray, second: np.ndarray, batches) -> float:
    """Tokens computed per real token when each batch embeds `first` in one forward and `second` in another,
    each padded to its longest text."""
    computed = sum(len(b) * (first[b].max() + second[b].max()) for b in map(list, batches))
    return computed / (first.sum() + second.sum())


def time_steps(pairs, by_longer: list, paired: list, steps: int) -> None:
    """Seconds per step of 16 pairs on one thread: the library's loss on batches grouped by the longer text,
    against `pairs_by_length_loss` on the method's batches, alternating step by step."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    from benchmark import modeling
    from methods.setfit import pairs_by_length_loss

    torch.set_num_threads(1)
    body = SentenceTransformer(modeling.resolve_model(None).path, device="cpu").train()
    optimizer = torch.optim.AdamW(body.parameters(), lr=2e-5, fused=True)
    labels = torch.tensor(list(pairs["label"]), dtype=torch.float)
    columns = {side: list(pairs[side]) for side in ("sentence_1", "sentence_2")}
    runs = {
        "grouped by the longer text": (CosineSimilarityLoss(body), by_longer),
        "as the method batches them": (pairs_by_length_loss()(body), paired),
    }
    seconds = dict.fromkeys(runs, 0.0)
    steps = min(steps, len(paired), len(by_longer))
    for step in range(steps):
        for name, (loss, batches) in runs.items():
            batch = list(batches[step])
            features = [body.preprocess([texts[i] for i in batch]) for texts in columns.values()]
            start = time.perf_counter()
            loss(features, labels[batch]).backward()
            optimizer.step()
            optimizer.zero_grad()
            seconds[name] += time.perf_counter() - start
    for name, total in seconds.items():
        print(f"{name}: {total / steps:.3f} s a step (one thread, {steps} steps)")


if __name__ == "__main__":
    main()
