import numpy as np
import pytest

from benchmark.budget import ALL, Budget, parse_budgets
from benchmark.data import sampling
from benchmark.data.tasks import Split, Task
from benchmark.errors import UsageError


def make_task(counts=(30, 20, 12)) -> Task:
    texts, labels = [], []
    for label, n in enumerate(counts):
        texts += [f"class {label} example {i}" for i in range(n)]
        labels += [label] * n
    return Task(
        "t", Split(texts, np.array(labels)), Split(["x"], np.array([0])), tuple(f"c{i}" for i in range(len(counts)))
    )


def test_sample_takes_exactly_n_per_class_without_replacement():
    task = make_task()
    sample = sampling.sample(task, Budget(8), seed=3)
    assert np.bincount(sample.labels).tolist() == [8, 8, 8]
    assert len(set(sample.texts)) == 24
    for text, label in zip(sample.texts, sample.labels, strict=True):
        assert text.startswith(f"class {label} ")


def test_same_budget_and_seed_give_the_identical_sample_for_every_method():
    first, second = sampling.sample(make_task(), Budget(8), 1), sampling.sample(make_task(), Budget(8), 1)
    assert first.texts == second.texts and np.array_equal(first.labels, second.labels)


def test_different_seeds_give_different_samples():
    assert sampling.sample(make_task(), Budget(8), 0).texts != sampling.sample(make_task(), Budget(8), 1).texts


def test_all_is_the_whole_pool():
    task = make_task()
    assert sampling.sample(task, ALL, 5).texts == task.train.texts


def test_budget_larger_than_a_class_is_refused_naming_the_class():
    with pytest.raises(UsageError, match=r"--shots 13 exceeds the smallest class .*'c2': 12"):
        sampling.check_budgets(make_task(), [Budget(8), Budget(13)])
    sampling.check_budgets(make_task(), [Budget(12), ALL])
    assert sampling.unsuppliable(make_task(), [Budget(8), Budget(13), ALL]) == [Budget(13)]


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "not a positive"),
        ("-8", "not a positive"),
        ("eight", "neither a positive integer"),
        ("8,8", "listed twice"),
        ("8,,64", "neither"),
        ("all,all", "listed twice"),
        ("²", "neither a positive integer"),
        ("٨", "neither a positive integer"),
        ("10000000000", "more than any dataset holds"),
    ],
)
def test_malformed_shots_are_usage_errors(value, message):
    with pytest.raises(UsageError, match=message):
        parse_budgets(value)


def test_shots_parse_in_order_and_write_as_records_always_did():
    budgets = parse_budgets("8, 64,all")
    assert [b.to_json() for b in budgets] == [8, 64, "all"] and budgets[2] is ALL and budgets[2].is_all
    assert [Budget.of(b.to_json()) for b in budgets] == budgets
    assert sorted(budgets[::-1], key=lambda b: b.sort_key) == budgets
    assert [b.label for b in budgets] == ["8 per class", "64 per class", "all labels"]
