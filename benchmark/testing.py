"""A task and an encoder that need no download, shipped with the package so that the whole pipeline runs offline
and in seconds: a synthetic two-class sentiment task any working method learns, and a tiny randomly initialised
BERT (4 blocks, width 32, a word-level vocabulary) in the layout of a sentence-transformers folder. Used by
`check_method` and by the test suite."""

from __future__ import annotations

import json
import random
from pathlib import Path

POSITIVE = ["good", "great", "excellent", "lovely", "superb", "fun"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "dull", "poor"]
FILLER = ["the", "movie", "film", "plot", "was", "acting", "story", "really", "quite", "and", "a", "cast"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def synthetic_rows(n_per_class: int, seed: int) -> list[tuple[str, str]]:
    """(text, label) pairs: a sentiment word among filler words; learnable by any working method."""
    rng = random.Random(seed)
    rows = []
    for label, words in (("neg", NEGATIVE), ("pos", POSITIVE)):
        for _ in range(n_per_class):
            text = rng.sample(FILLER, rng.randint(3, 8))
            text.insert(rng.randrange(len(text) + 1), rng.choice(words))
            rows.append((" ".join(text), label))
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows, header=("text", "label"), sep=",") -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def build_tiny_model(folder: Path, sentence_transformers: bool = True, layers: int = 4) -> Path:
    """A `layers`-block, 32-wide BERT with random weights (seeded) and a word-level vocabulary, saved as
    safetensors; with the sentence-transformers files (mean pooling, max length 32) unless told otherwise."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + sorted(set(POSITIVE + NEGATIVE + FILLER))
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    torch.random.set_rng_state(generator_state)  # the caller's random state stays as it was
    if sentence_transformers:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32, "do_lower_case": False}))
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder
