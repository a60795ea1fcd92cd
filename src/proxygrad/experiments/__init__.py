"""The paper's experiments and the comparisons: one module per figure or table, each a function of a config."""
