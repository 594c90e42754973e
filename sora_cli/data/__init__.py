"""Data files shipped with the package (the content policy, policy.json)."""
