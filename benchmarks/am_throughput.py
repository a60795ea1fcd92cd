"""Activation-maximization throughput (image-iterations per second): proxygrad vs Lucent vs a plain loop.

All three run the same model (torchvision ResNet18, random weights unless --weights is given) at the same
image size with ProxyGrad in the backward pass, in one run on the machine at hand:
- proxygrad: ``proxygrad.am.render`` with the paper's recipe (normalized steps, weak blur + small rotation
  after every step), all objectives in one batch;
- plain loop: the same recipe written as the obvious PyTorch loop, one image at a time;
- lucent: ``lucent.optvis.render.render_vis`` (torch-lucent, needs kornia==0.4.1) with its default
  transforms and Adam, batch 1 and batched (skipped with a note when lucent is not installed).

    python benchmarks/am_throughput.py [--size 224] [--batch 64] [--steps 20] [--device cuda]
"""
import argparse
import time

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms.v2.functional as TF

import proxygrad
from proxygrad.am import RenderConfig, class_logit, render
from proxygrad.am.presets import preset
from proxygrad.models import IMAGENET_MEAN, IMAGENET_STD, InputSpec


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_proxygrad(model, spec, batch, steps, device, **options):
    config = RenderConfig(method="proxygrad", slope=0.075, steps=steps, batch_size=batch,
                          regularization=preset("paper"), progress=False, trace_every=10**9, **options)
    objectives = [class_logit(i % 1000) for i in range(batch)]
    render(model, spec, objectives[:2], [0, 1], RenderConfig(steps=2, progress=False, **options))  # warm-up
    _sync(device)
    start = time.perf_counter()
    render(model, spec, objectives, list(range(batch)), config, device=device)
    _sync(device)
    return batch * steps / (time.perf_counter() - start)


def bench_plain_loop(model, spec, images, steps, device):
    """The paper's recipe as a plain loop, one image at a time."""
    mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
    _sync(device)
    start = time.perf_counter()
    with proxygrad.patched(model, "proxygrad", 0.075):
        for i in range(images):
            x = (0.1 * torch.randn(1, 3, *spec.size, device=device)).clamp(-1, 1)
            for _ in range(steps):
                x.requires_grad_(True)
                logit = model(((x + 1) / 2 - mean) / std)[0, i % 1000]
                (g,) = torch.autograd.grad(logit, x)
                with torch.no_grad():
                    x = x + 25 * g / g.norm()
                    x = TF.gaussian_blur(x, [3, 3], [0.5, 0.5])
                    x = TF.rotate(x, float(torch.empty(1).uniform_(-1, 1)))
                    x = x.clamp(-1, 1)
    _sync(device)
    return images * steps / (time.perf_counter() - start)


def bench_lucent(model, size, batch, steps, device):
    try:
        from lucent.optvis import param, render as lucent_render
    except ImportError as error:
        return None, f"lucent not installed ({error}); pip install torch-lucent kornia==0.4.1 --no-deps"
    with proxygrad.patched(model, "proxygrad", 0.075):
        _sync(device)
        start = time.perf_counter()
        lucent_render.render_vis(model, "fc:1", param_f=lambda: param.image(size, batch=batch),
                                 thresholds=(steps,), show_image=False, progress=False, fixed_image_size=size)
        _sync(device)
    return batch * steps / (time.perf_counter() - start), ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="image size (default 224 on GPU, 64 on CPU)")
    parser.add_argument("--batch", type=int, default=None, help="images per batch (default 64 GPU, 16 CPU)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--plain-images", type=int, default=2)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    size = args.size or (224 if device.type == "cuda" else 64)
    batch = args.batch or (64 if device.type == "cuda" else 16)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    torch.manual_seed(0)
    model = torchvision.models.resnet18().to(device).eval().requires_grad_(False)
    spec = InputSpec(3, (size, size), IMAGENET_MEAN, IMAGENET_STD)
    rows = [("proxygrad fp32, batched", bench_proxygrad(model, spec, batch, args.steps, device), ""),
            ("proxygrad fp32, oneDNN", bench_proxygrad(model, spec, batch, args.steps, device, deterministic=False),
             "CPU: not bitwise batch-independent"),
            ("plain loop, batch 1", bench_plain_loop(model, spec, args.plain_images, args.steps, device), "")]
    for lucent_batch in (1, batch):
        rate, note = bench_lucent(model, size, lucent_batch, args.steps, device)
        rows.append((f"lucent render_vis, batch {lucent_batch}", rate, note))
    print(f"ResNet18, 3x{size}x{size}, {args.steps} steps, {name}, torch {torch.__version__}")
    lucent = rows[-1][1]
    print(f"{'method':<30}{'img-iter/s':>12}{'vs lucent batched':>20}")
    for label, rate, note in rows:
        ratio = f"{rate / lucent:.2f}x" if rate and lucent else "-"
        print(f"{label:<30}{rate if rate else float('nan'):>12.1f}{ratio:>20}  {note}")


if __name__ == "__main__":
    main()
