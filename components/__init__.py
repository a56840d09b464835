"""finegate stages: each a pure core plus a thin KFP component."""
