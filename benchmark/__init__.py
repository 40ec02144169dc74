"""fewshot-bench: which way of adapting a pretrained encoder wins at your label budget, and what it costs."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
