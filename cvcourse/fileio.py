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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        # mkstemp creates the file for its owner only (0o600); give the result the mode a
        # plain open() would (0o666 less the umask), so that released notebooks, grades and
        # reports can be read by whoever the course shares them with.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
