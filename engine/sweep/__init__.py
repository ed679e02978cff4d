"""Sweeps: a grid of specs (engine/sweep/grid.py), each cell run on a backend (engine/sweep/backends.py) and
written as a tidy table (engine/sweep/table.py). Importing this package does not import torch."""
