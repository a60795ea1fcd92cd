"""Turning gradients into updates, per image of a batch: normalized (the paper's, lr * g / ||g||_2), plain
(lr * g), Adam and NAdam (torch.optim's updates, with moments per pixel). An image whose gradient is zero or
not finite gets a zero update for that step, and the step is counted.
"""
from __future__ import annotations

import torch
from torch import Tensor


class Stepper:
    """Turns gradients g (B, ...) into updates (B, ...) for one batch with rule ``rule`` (normalized, plain,
    adam, nadam); counts zero and non-finite gradients per image in ``zero`` and ``nonfinite`` (B,)."""

    def __init__(self, rule: str, x: Tensor):
        self.rule = rule
        self.zero = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        self.nonfinite = torch.zeros_like(self.zero)
        self.moment1 = torch.zeros_like(x) if rule in ("adam", "nadam") else None
        self.moment2 = torch.zeros_like(x) if rule in ("adam", "nadam") else None
        self.t, self.mu_product = 0, 1.0

    def update(self, g: Tensor, lr: float) -> Tensor:
        norm = g.flatten(1).norm(dim=1)
        finite = torch.isfinite(norm)
        zero = finite & (norm == 0)
        self.nonfinite += ~finite
        self.zero += zero
        ok = (finite & ~zero).view(-1, *([1] * (g.dim() - 1)))
        g = torch.where(ok, g, torch.zeros_like(g))
        if self.rule == "normalized":
            return lr * g / torch.where(ok, norm.view_as(ok), torch.ones_like(norm.view_as(ok)))
        if self.rule == "plain":
            return lr * g
        if self.rule == "nadam":
            return self._nadam(g, lr, ok)
        return self._adam(g, lr, ok)

    def _adam(self, g: Tensor, lr: float, ok: Tensor, betas=(0.9, 0.999), eps=1e-8) -> Tensor:
        self.t += 1
        self.moment1.lerp_(g, 1 - betas[0])
        self.moment2.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
        m_hat = self.moment1 / (1 - betas[0] ** self.t)
        v_hat = self.moment2 / (1 - betas[1] ** self.t)
        return torch.where(ok, lr * m_hat / (v_hat.sqrt() + eps), torch.zeros_like(g))

    def _nadam(self, g: Tensor, lr: float, ok: Tensor, betas=(0.9, 0.999), eps=1e-8,
               momentum_decay=4e-3) -> Tensor:
        """torch.optim.NAdam's update (Dozat 2016 with its momentum schedule), per image."""
        self.t += 1
        mu = betas[0] * (1 - 0.5 * 0.96 ** (self.t * momentum_decay))
        mu_next = betas[0] * (1 - 0.5 * 0.96 ** ((self.t + 1) * momentum_decay))
        self.mu_product *= mu
        self.moment1.lerp_(g, 1 - betas[0])
        self.moment2.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
        denom = (self.moment2 / (1 - betas[1] ** self.t)).sqrt() + eps
        step = (lr * (1 - mu) / (1 - self.mu_product)) * g / denom \
            + (lr * mu_next / (1 - self.mu_product * mu_next)) * self.moment1 / denom
        return torch.where(ok, step, torch.zeros_like(g))
