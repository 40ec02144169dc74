"""fewshot-bench: which way of adapting a pretrained encoder wins at your label budget, and what it costs."""

__version__ = "0.2.0"
