"""cartrial: runs a multi-center CAR-T trial in autoimmune disease, from screening to long-term follow-up."""

__version__ = "0.1.0"
