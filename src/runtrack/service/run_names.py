"""Readable, unique run names for runs created with only a project: ``r`` + 19 random lowercase
letters and digits (20 characters, within the 30 flyteidl2 allows)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
NAME_LENGTH = 20


def generate_run_name() -> str:
    # A leading letter keeps the name a valid identifier everywhere (DNS labels, k8s names).
    return "r" + "".join(secrets.choice(_ALPHABET) for _ in range(NAME_LENGTH - 1))
