"""The optimality gap's formula."""
import numpy as np
import pytest

from proxygrad.exact import optimality_gap


def test_gap_formula():
    assert optimality_gap(10.0, 9.0) == pytest.approx(0.1)
    assert optimality_gap(10.0, 10.0) == 0.0
    assert optimality_gap(-4.0, -5.0) == pytest.approx(0.25)  # relative to |exact|
    assert np.allclose(optimality_gap(np.array([2.0, 4.0]), np.array([1.0, 4.0])), [0.5, 0.0])


def test_zero_maximum_is_an_error():
    with pytest.raises(ValueError, match="0"):
        optimality_gap(0.0, -1.0)
