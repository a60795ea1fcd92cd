"""Training with ReLU, Leaky ReLU or ProxyGrad (the paper's Section 6): data, the loop, data-parallel runs.

``make_config(preset, **overrides)`` -> :class:`TrainConfig`; ``train(config, out_dir)`` trains or resumes a run
directory and returns its results. See :mod:`.data`, :mod:`.loop` and :mod:`.dist`.
"""
from .datasets import DATASETS, DataConfig, data_config, load_splits, prepare
from .loop import PRESETS, TrainConfig, build_model, make_config, read_results, step_lr, train

__all__ = ["DATASETS", "DataConfig", "PRESETS", "TrainConfig", "build_model", "data_config", "load_splits",
           "make_config", "prepare", "read_results", "step_lr", "train"]
