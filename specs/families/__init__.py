"""The rule families: one module per family, each rule a short function whose docstring is its statement.

Every module in this package is a family; :func:`specs.engine.registry.load_all` imports them all.
"""
