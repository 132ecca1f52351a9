"""Writing files atomically: a reader sees the old file or the new one, never half of one.

Used for everything cvcourse writes (figures, downloads, caches): the data goes to a
temporary file in the destination's directory, which is renamed over the destination only
once it is complete. A crash or an exception midway leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(destination, suffix: str | None = None):
    """Yield a temporary path beside ``destination``; rename it into place on success.

    The temporary file keeps ``destination``'s suffix (or ``suffix``), so that libraries that
    pick a format from the file name (matplotlib's ``savefig``, ``np.save``) still do. On an
    exception the temporary file is removed and ``destination`` is left untouched.

    >>> with atomic_path("out/figure.png") as tmp:      # doctest: +SKIP
    ...     fig.savefig(tmp)
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=suffix or destination.suffix, dir=destination.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
