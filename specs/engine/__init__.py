"""The machinery every rule runs on: the registry, assertions, error contracts, oracles, state
isolation and torch release numbers."""
