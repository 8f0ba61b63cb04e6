"""Tailor's local stack: template.yaml's API, functions and storage on a laptop, no AWS, no Docker.

Run it with `python -m infra.local_stack`; embed it with `LocalStack` (see stack.py).
"""

from .stack import LocalStack

__all__ = ["LocalStack"]
