"""Why ProxyGrad works, measured: gradient magnitudes and Leaky ReLU statistics in ResNets (paper Section 7,
Appendix 11.3) and linear regions of small MLPs (seed 003)."""
