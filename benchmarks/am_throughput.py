"""Activation-maximization throughput (image-iterations per second): proxygrad vs Lucent vs a plain loop.

Every row runs the same model at the same image size with ProxyGrad (slope 0.075) in the backward pass
(``--method relu``: the plain gradient everywhere), in one run on the machine at hand, frozen weights; each
rate is the median of ``--repeats`` timed runs after a warm-up (which also compiles, for the compiled rows):
- ours paper: ``proxygrad.am.render`` with the paper's recipe (normalized steps, weak blur + small
  rotation after every step), all objectives of a row in one batch; "compiled" adds ``compile=True``;
  "oneDNN" (CPU only) turns ``deterministic`` off (faster kernels, not bitwise batch-independent);
- ours lucent recipe: ``recipe_config("lucent")`` (Fourier image, Adam, Lucent's transforms);
- plain loop: the paper's recipe written as the obvious PyTorch loop, one image at a time;
- lucent: ``lucent.optvis.render.render_vis`` (torch-lucent, needs kornia==0.4.1) with its defaults (Fourier
  image, Adam, standard transforms), one objective per image (skipped with a note when lucent is missing).
Models: ``resnet18`` (torchvision, random weights; 3 x size x size, ImageNet normalization) or ``digits``
(the bundled model, 1 x 32 x 32). On a GPU, ``--precision bf16 --channels-last`` apply to our rows.

    python benchmarks/am_throughput.py [--model resnet18|digits] [--size 224] [--batches 1,64] [--steps 20]
                                       [--method proxygrad|relu] [--device cuda] [--precision bf16]
                                       [--channels-last] [--no-compile]
"""
import argparse
import contextlib
import copy
import functools
import statistics
import time

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms.v2.functional as TF

import proxygrad
from proxygrad.am import class_logit, render
from proxygrad.am.recipes import recipe_config
from proxygrad.models import IMAGENET_MEAN, IMAGENET_STD, InputSpec

SLOPE = 0.075


def _patched(model, method):
    return proxygrad.patched(model, method, SLOPE) if method != "relu" else contextlib.nullcontext()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(run, images, steps, repeats, device) -> float:
    """Median image-iterations per second of ``run()`` over ``repeats`` timed calls (after one warm-up)."""
    run()
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        rates.append(images * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_proxygrad(model, spec, batch, steps, device, repeats, method, recipe="paper", **options):
    config = recipe_config(recipe, spec, method=method, slope=SLOPE, steps=steps, batch_size=batch,
                           progress=False, trace_every=10**9, **options)
    objectives = [class_logit(i % spec.num_classes) for i in range(batch)]
    return _rate(lambda: render(model, spec, objectives, list(range(batch)), config, device=device),
                 batch, steps, repeats, device)


def bench_plain_loop(model, spec, images, steps, device, repeats, method):
    """The paper's recipe as a plain loop, one image at a time."""
    mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
    lr = 25 * (spec.channels * spec.size[0] * spec.size[1] / (3 * 224 * 224)) ** 0.5

    def run():
        with _patched(model, method):
            for i in range(images):
                x = (0.1 * torch.randn(1, spec.channels, *spec.size, device=device)).clamp(-1, 1)
                for _ in range(steps):
                    x.requires_grad_(True)
                    logit = model(((x + 1) / 2 - mean) / std)[0, i % spec.num_classes]
                    (g,) = torch.autograd.grad(logit, x)
                    with torch.no_grad():
                        x = x + lr * g / g.norm()
                        x = TF.gaussian_blur(x, [3, 3], [0.5, 0.5])
                        x = TF.rotate(x, float(torch.empty(1).uniform_(-1, 1)))
                        x = x.clamp(-1, 1)

    return _rate(run, images, steps, repeats, device)


class InZeroOne(nn.Module):
    """Lucent's images are in [0, 1]; the digits model takes the [-1, 1] image itself."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x * 2 - 1)


def bench_lucent(spec, batch, steps, device, repeats, method, lucent_model):
    try:
        from lucent.optvis import objectives, param, render as lucent_render
    except ImportError as error:
        return None, f"lucent not installed ({error}); pip install torch-lucent kornia==0.4.1 --no-deps"
    net, layer, preprocess = lucent_model
    objective = sum(objectives.channel(layer, i % spec.num_classes, batch=i) for i in range(batch))
    size = spec.size[0]

    def run():
        lucent_render.render_vis(net, objective, param_f=lambda: param.image(size, channels=spec.channels,
                                                                             batch=batch),
                                 thresholds=(steps,), preprocess=preprocess, show_image=False, progress=False,
                                 fixed_image_size=size)

    with _patched(net, method):
        return _rate(run, batch, steps, repeats, device), ""


def build(name, size, device):
    """(model, spec, (Lucent's model, its name for the last layer, Lucent's ImageNet preprocessing)). Lucent
    gets its own copy: render_vis leaves its hooks (holding activations) on the model it is given."""
    if name == "digits":
        loaded = proxygrad.load("digits", device=device)
        model = loaded.model.eval().requires_grad_(False)
        return model, loaded.spec, (InZeroOne(copy.deepcopy(model)).eval(), "net_fc", False)
    torch.manual_seed(0)
    model = torchvision.models.resnet18().to(device).eval().requires_grad_(False)
    spec = InputSpec(3, (size, size), IMAGENET_MEAN, IMAGENET_STD, class_names=tuple(map(str, range(1000))))
    return model, spec, (copy.deepcopy(model), "fc", True)


def rows(args, device):
    size = args.size or (224 if device.type == "cuda" else 64)
    model, spec, lucent_model = build(args.model, size, device)
    fast = dict(precision=args.precision, channels_last=args.channels_last)
    table = []
    for batch in args.batches:
        bench = functools.partial(bench_proxygrad, model, spec, batch, args.steps, device, args.repeats, args.method)
        lucent, note = bench_lucent(spec, batch, args.steps, device, args.repeats, args.method, lucent_model)
        table.append(("lucent render_vis", batch, lucent, note))
        table.append(("ours paper", batch, bench(**fast), ""))
        if not args.no_compile:
            table.append(("ours paper, compiled", batch, bench(compile=True, **fast), ""))
            if device.type == "cuda":
                table.append(("ours paper, compiled + CUDA graphs", batch, bench(compile="reduce-overhead", **fast),
                              "mode reduce-overhead"))
        if device.type == "cpu":
            table.append(("ours paper, oneDNN", batch, bench(deterministic=False),
                          "not bitwise batch-independent"))
        table.append(("ours lucent recipe", batch, bench(recipe="lucent", **fast), ""))
        if not args.no_compile:
            table.append(("ours lucent recipe, compiled", batch, bench(recipe="lucent", compile=True, **fast),
                          ""))
    if args.plain_images:
        table.append(("plain loop", 1, bench_plain_loop(model, spec, args.plain_images, args.steps, device,
                                                        args.repeats, args.method), ""))
    return table, spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("resnet18", "digits"), default="resnet18")
    parser.add_argument("--size", type=int, default=None, help="resnet18's image size (default 224 GPU, 64 CPU)")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,64 GPU, 1,16 CPU)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (the median is reported)")
    parser.add_argument("--plain-images", type=int, default=2, help="images of the plain-loop row (0: skip it)")
    parser.add_argument("--method", choices=("proxygrad", "relu"), default="proxygrad",
                        help="the backward pass of every row (relu: the plain gradient, Lucent unpatched)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.batches = [int(b) for b in (args.batches or ("1,64" if device.type == "cuda" else "1,16")).split(",")]
    table, spec = rows(args, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model}, {spec.channels}x{spec.size[0]}x{spec.size[1]}, {args.method}, {args.steps} steps, {name}, "
          f"torch {torch.__version__}, {args.precision}{', channels_last' if args.channels_last else ''}")
    lucent = {batch: rate for label, batch, rate, _ in table if label == "lucent render_vis"}
    print(f"{'method':<36}{'batch':>6}{'img-iter/s':>12}{'vs lucent':>11}")
    for label, batch, rate, note in table:
        ratio = f"{rate / lucent[batch]:.2f}x" if rate and lucent.get(batch) else "-"
        print(f"{label:<36}{batch:>6}{rate if rate else float('nan'):>12.1f}{ratio:>11}  {note}")


if __name__ == "__main__":
    main()
