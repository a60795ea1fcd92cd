"""Results on disk: atomic files, PNGs, figures, run directories (and, later, the HTML report)."""
