"""The derivative atlas: differentiable torch ops as data (``table``), how to evaluate them
(``evaluate``), which of PyTorch's own OpInfo ops they exercise (``coverage``) and what torch
returns at their special points, as a docs table (``edges``)."""
