"""autograd-spec: an executable specification of PyTorch autograd.

Every rule lives in one family module (``specs/<family>.py``) and is registered with
:func:`specs.engine.registry.rule`.  The registry is the single source for the tests, the
documentation's rule catalogue and the JSON report of a run.
"""
