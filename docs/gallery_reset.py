"""Run before each gallery script: every page starts from torch's defaults and a fixed seed."""

import torch


def reset_torch(gallery_conf, fname):
    torch.manual_seed(0)
    torch.set_grad_enabled(True)
    torch.set_default_dtype(torch.float32)
    torch.autograd.set_detect_anomaly(False)
