"""Published clinical scores, one module per score; `registry` is their stable JSON contract.

The package imports nothing on purpose: callers import the score module they need, so a
cycle between a score and the registry cannot appear.
"""
