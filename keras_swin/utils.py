"""Small utilities: atomic file output."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

_COMPOUND_SUFFIXES = (".weights.h5", ".weights.json")


def _suffix(name: str) -> str:
    for suffix in _COMPOUND_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return os.path.splitext(name)[1]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path that replaces `path` only on success.

    The temporary file lives in the destination folder (so the final
    `os.replace` is atomic on POSIX and Windows) and keeps the suffix of
    `path` (`.weights.h5`, `.keras`, ...), which Keras' savers check. If
    the body raises, the temporary file is removed and `path` is left as
    it was: no half-written output.

    Args:
        path: the final destination.

    Yields:
        The temporary path to write to.

    Example:
        >>> with atomic_path("model.keras") as tmp:
        ...     model.save(tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{name}.", suffix=_suffix(name), dir=folder
    )
    os.close(fd)
    os.remove(tmp)  # the writer creates it; some refuse to overwrite
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise RuntimeError(f"Nothing was written to {path}.")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
