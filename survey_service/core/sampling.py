"""Stable sampling: a key (a person in some scope) always falls in the same one of 100 buckets, so a
sample of N percent keeps the same people from one decision to the next, and raising N only adds people.

Pure: no app, no database. A bucket is SHA-256 of the key, its first `digest_bytes` bytes read big-endian,
modulo 100. The widget's buckets were drawn from 4 bytes and the lifecycle rules' from 8; each caller keeps
its own width (and its key spelling), so nobody already in or out of a sample is re-sampled.
"""

from __future__ import annotations

import hashlib

BUCKETS = 100


def bucket(key: str, digest_bytes: int = 8) -> int:
    """The key's bucket, 0..99."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:digest_bytes], "big") % BUCKETS


def in_sample(key: str, percent: int, digest_bytes: int = 8) -> bool:
    """Whether the key is in a sample of `percent` percent: always at 100 or more, never at 0 or less."""
    return bucket(key, digest_bytes) < percent
