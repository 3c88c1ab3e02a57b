"""One checksum routine and one error for every file the project verifies (weights, datasets, caches).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f.bin"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_of(p)[:12]
    'ba7816bf8f01'
    >>> verify_sha256(p, "0" * 64, "test file", "Recreate it.")
    Traceback (most recent call last):
    ...
    helpers.core.checksum.ChecksumError: test file: ... has SHA-256 ba7816bf8f01cfea..., expected 0000000000000000... The file is damaged or a different release. Recreate it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union


class ChecksumError(RuntimeError):
    """A file's SHA-256 differs from the one the project recorded (damaged, or a different release)."""


def sha256_of(source: Union[str, Path, bytes], chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file (read in 1 MiB chunks) or of bytes already in memory."""
    digest = hashlib.sha256()
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(source)
        return digest.hexdigest()
    with open(source, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(source: Union[str, Path, bytes], expected: str, what: str, fix: str,
                  where: Union[str, Path, None] = None) -> None:
    """Raise :class:`ChecksumError` unless ``source`` hashes to ``expected``; the message names the file and the fix.

    ``where`` names the file when ``source`` is bytes (for example a decompressed download).
    """
    actual = sha256_of(source)
    if actual != expected:
        place = where if where is not None else (source if not isinstance(source, (bytes, bytearray, memoryview))
                                                 else "data")
        raise ChecksumError(f"{what}: {place} has SHA-256 {actual[:16]}..., expected {expected[:16]}... "
                            f"The file is damaged or a different release. {fix}")
