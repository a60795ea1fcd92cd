"""Evaluation metrics for visualizations (issue #11): MACO's plausibility, FID and transferability
(Fel et al., NeurIPS 2023), plus target share, seed consistency and statistics over seeds.

Per image: :func:`score_images` (or :func:`target_share`, :func:`transferability`, :func:`plausibility`).
Per set: :func:`class_fid`, :func:`seed_consistency`. Over seeds: :func:`mean_ci`, :func:`paired_comparison`.
Images are (N, C, H, W) in [-1, 1]; models are LoadedModels or modules with their InputSpec.
"""
from .classify import on_target, predicted_classes, target_share, transferability
from .consistency import correlation_matrix, mean_pairwise_correlation, seed_consistency
from .features import evaluating, last_linear, logits, model_input, penultimate_features
from .fid import class_fid, class_fid_from_features, frechet_distance
from .groups import GroupScores
from .plausibility import cosine_matrix, plausibility, plausibility_from_features
from .scores import score_images
from .stats import MeanCI, PairedComparison, mean_ci, paired_comparison

__all__ = [
    "GroupScores", "MeanCI", "PairedComparison", "class_fid", "class_fid_from_features", "correlation_matrix",
    "cosine_matrix", "evaluating", "frechet_distance", "last_linear", "logits", "mean_ci",
    "mean_pairwise_correlation", "model_input", "on_target", "paired_comparison", "penultimate_features",
    "plausibility", "plausibility_from_features", "predicted_classes", "score_images", "seed_consistency",
    "target_share", "transferability",
]
