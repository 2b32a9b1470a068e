"""What rules are checked over: hypothesis strategies for tensors and generated differentiable programs."""
