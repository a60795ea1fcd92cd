"""Count host synchronizations in the render loop on a CUDA GPU (issue #9: "no host synchronization inside
the loop"). Renders with torch.cuda.set_sync_debug_mode("warn") and prints each distinct warning's source; a
loop free of syncs shows only the transfers after the last step (results to the CPU).

Usage: python benchmarks/gpu_sync_check.py [--steps 20] [--recipe paper|lucent|maco]
"""
from __future__ import annotations

import argparse
import collections
import warnings

import torch

from proxygrad.am.objectives import class_logit
from proxygrad.am.recipes import recipe_config
from proxygrad.am.render import render
from proxygrad.models import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--recipe", default="paper")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    digits = load("digits", device="cuda")
    config = recipe_config(args.recipe, digits.spec, method="proxygrad", steps=args.steps, progress=False,
                           trace_every=args.steps + 1)
    objectives = [class_logit(k % 10) for k in range(64)]
    render(digits.model, digits.spec, objectives, list(range(64)), config)  # warm-up
    sources = collections.Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            render(digits.model, digits.spec, objectives, list(range(64)), config)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for warning in caught:
        sources[f"{warning.filename}:{warning.lineno}: {str(warning.message)[:80]}"] += 1
    print(f"{sum(sources.values())} synchronizing calls in one render of {args.steps} steps ({args.recipe}):")
    for source, count in sources.most_common():
        print(f"{count:6d}  {source}")


if __name__ == "__main__":
    main()
