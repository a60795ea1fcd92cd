"""Demons-type regularization schemes of Baust et al. (seed 004) for an ascent step of size tau.

- fluid:          x <- x + tau * (K_f * g)          (smooth the update)
- elastic:        x <- K_e * (x + tau * g)          (smooth the iterate; an H1 penalty)
- fluid-elastic:  x <- K_e * (x + tau * (K_f * g))

K_f, K_e are ``filters.Filter`` objects (Gaussian or Sobolev, reflect padding unless chosen otherwise).
"""
from __future__ import annotations

import torch

from .filters import KINDS, Filter

FORMS = ("none", "fluid:FILTER", "elastic:FILTER", "fluid-elastic:FLUID_FILTER:ELASTIC_FILTER")
_HELP = ("valid forms: " + ", ".join(repr(f) for f in FORMS)
         + ", where FILTER is gaussian:SIZE[:SIGMA] or sobolev:SIZE[:GAMMA] (SIZE odd; the parameter is "
           "fitted to SIZE when omitted), e.g. 'fluid:gaussian:9' or 'fluid-elastic:sobolev:9:gaussian:5'")


class Scheme:
    """A fluid filter for the update and / or an elastic filter for the iterate (None: no filtering).

    ``Scheme(fluid=f, elastic=e)``, or the constructors ``Scheme.fluid(f)``, ``Scheme.elastic(e)``,
    ``Scheme.fluid_elastic(f, e)``, ``Scheme.none()``, ``Scheme.parse(text)``. On an instance,
    ``scheme.fluid`` and ``scheme.elastic`` are the filters (instance attributes shadow the constructors,
    which are classmethods and so non-data descriptors).
    """

    def __init__(self, fluid: Filter | None = None, elastic: Filter | None = None):
        for name, f in (("fluid", fluid), ("elastic", elastic)):
            if f is not None and not callable(f):
                raise TypeError(f"{name} must be a Filter (or a callable on (B, C, H, W) tensors) or None, got {f!r}")
        self.fluid = fluid
        self.elastic = elastic

    @classmethod
    def none(cls) -> "Scheme":
        """No regularization: x <- x + tau * g."""
        return cls()

    @classmethod
    def fluid(cls, filter: Filter) -> "Scheme":
        """x <- x + tau * (K_f * g)."""
        return cls(fluid=filter)

    @classmethod
    def elastic(cls, filter: Filter) -> "Scheme":
        """x <- K_e * (x + tau * g)."""
        return cls(elastic=filter)

    @classmethod
    def fluid_elastic(cls, fluid: Filter, elastic: Filter) -> "Scheme":
        """x <- K_e * (x + tau * (K_f * g))."""
        return cls(fluid=fluid, elastic=elastic)

    def __eq__(self, other) -> bool:
        return isinstance(other, Scheme) and (self.fluid, self.elastic) == (other.fluid, other.elastic)

    def __hash__(self) -> int:
        return hash((self.fluid, self.elastic))

    def __repr__(self) -> str:
        return f"Scheme(fluid={self.fluid!r}, elastic={self.elastic!r})"

    @property
    def kind(self) -> str:
        """'none', 'fluid', 'elastic' or 'fluid-elastic'."""
        parts = [name for name, f in (("fluid", self.fluid), ("elastic", self.elastic)) if f is not None]
        return "-".join(parts) or "none"

    def filter_update(self, g: torch.Tensor) -> torch.Tensor:
        """K_f * g for an update g (B, C, H, W); g itself without a fluid filter."""
        return g if self.fluid is None else self.fluid(g)

    def filter_image(self, x: torch.Tensor) -> torch.Tensor:
        """K_e * x for an iterate x (B, C, H, W); x itself without an elastic filter."""
        return x if self.elastic is None else self.elastic(x)

    def step(self, x: torch.Tensor, g: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
        """One ascent step K_e * (x + tau * (K_f * g)) for x, g (B, C, H, W).

        tau: a float or a tensor broadcastable to x, e.g. (B, 1, 1, 1) for one step size per image.
        """
        return self.filter_image(x + tau * self.filter_update(g))

    def __str__(self) -> str:
        return ":".join([self.kind] + [str(f) for f in (self.fluid, self.elastic) if f is not None])

    @classmethod
    def parse(cls, text: str, padding: str = "reflect") -> "Scheme":
        """Scheme from a CLI string such as "none", "fluid:gaussian:9", "elastic:sobolev:5:0.1",
        "fluid-elastic:sobolev:9:gaussian:5"; ValueError listing the valid forms otherwise."""
        tokens = str(text).strip().lower().split(":")
        try:
            kind, rest = tokens[0], tokens[1:]
            n_filters = {"none": 0, "fluid": 1, "elastic": 1, "fluid-elastic": 2}.get(kind)
            if n_filters is None:
                raise ValueError(f"unknown scheme {kind!r}")
            filters = []
            while rest:
                f, rest = _parse_filter(rest, padding)
                filters.append(f)
            if len(filters) != n_filters:
                raise ValueError(f"{kind!r} takes {n_filters} filter(s), got {len(filters)}")
        except ValueError as err:
            raise ValueError(f"cannot parse scheme {text!r}: {err}; {_HELP}") from None
        if kind == "fluid-elastic":
            return cls(fluid=filters[0], elastic=filters[1])
        return cls(**{kind: filters[0]}) if filters else cls()


def _parse_filter(tokens: list[str], padding: str) -> tuple[Filter, list[str]]:
    """(Filter, remaining tokens) from tokens starting with KIND, SIZE and an optional parameter."""
    if len(tokens) < 2 or tokens[0] not in KINDS:
        raise ValueError(f"expected a filter KIND:SIZE with KIND in {KINDS}, got {':'.join(tokens)!r}")
    try:
        size = int(tokens[1])
    except ValueError:
        raise ValueError(f"filter size must be an integer, got {tokens[1]!r}") from None
    param, used = None, 2
    if len(tokens) > 2 and tokens[2] not in KINDS:
        try:
            param, used = float(tokens[2]), 3
        except ValueError:
            raise ValueError(f"filter parameter must be a number, got {tokens[2]!r}") from None
    return Filter(tokens[0], size, param, padding), tokens[used:]
