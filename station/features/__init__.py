"""Features of the baseline: LBP-TOP (2D) and shape index / HK curvature histograms (3D)."""
