"""Cost of ProxyGrad vs nn.ReLU vs the paper's reference code (Appendix 11.4) in ResNet18 training steps.

Each variant runs in its own fresh subprocess (so peak memory is its own): warm-up steps, then timed steps of
forward + cross-entropy + backward + SGD. Peak memory is torch.cuda.max_memory_allocated on a GPU and the
process's peak resident set size on the CPU (which includes the ~constant interpreter + weights, and the
allocator's noise). "saved" is exact: the distinct storages autograd keeps for the backward pass of one step.
Variants are interleaved over ``--rounds`` rounds; the table shows the median step time.
Prints ratios against nn.ReLU. Target: ProxyGrad <= 1.05x time and <= 1.00x memory.

    python benchmarks/activation_cost.py [--batch 16] [--size 112] [--steps 10] [--rounds 3] [--device cpu|cuda]
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = ("relu", "proxygrad", "paper-reference")


def run_variant(variant: str, batch: int, size: int, steps: int, device: str) -> dict:
    import torch
    import torchvision

    import proxygrad
    from proxygrad.surrogates.reference import PaperProxyGradReLU

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=100).to(device).train()
    if variant == "proxygrad":
        proxygrad.convert(model, mode="proxygrad", slope=0.2)
    elif variant == "paper-reference":
        for parent in model.modules():
            for name, child in parent._modules.items():
                if isinstance(child, torch.nn.ReLU):
                    parent._modules[name] = PaperProxyGradReLU(0.2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 100, (batch,), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    del loss
    saved = sum(storages.values())

    for _ in range(2):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"variant": variant, "step_s": (time.perf_counter() - start) / steps, "peak_bytes": peak,
            "saved_bytes": saved}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.batch, args.size, args.steps, args.device)))
        return
    if args.device is None:
        import torch
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    runs = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--variant", variant, "--batch", str(args.batch), "--size",
                   str(args.size), "--steps", str(args.steps), "--device", args.device]
            runs[variant].append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    rows = {v: {"step_s": statistics.median(r["step_s"] for r in rs), "peak_bytes": max(r["peak_bytes"] for r in rs),
                "saved_bytes": rs[0]["saved_bytes"]} for v, rs in runs.items()}
    base = rows["relu"]
    print(f"ResNet18 training step, batch {args.batch}, 3x{args.size}x{args.size}, {args.device}, "
          f"median of {args.rounds} rounds x {args.steps} timed steps")
    print(f"{'variant':<18}{'step (s)':>10}{'time':>8}{'peak MiB':>10}{'peak':>8}{'saved MiB':>11}{'saved':>8}")
    for variant, row in rows.items():
        print(f"{variant:<18}{row['step_s']:>10.3f}{row['step_s'] / base['step_s']:>7.3f}x"
              f"{row['peak_bytes'] / 2**20:>10.0f}{row['peak_bytes'] / base['peak_bytes']:>7.3f}x"
              f"{row['saved_bytes'] / 2**20:>11.1f}{row['saved_bytes'] / base['saved_bytes']:>7.3f}x")


if __name__ == "__main__":
    main()
