"""Downloading dataset files: checksummed, with progress, never leaving a partial file.

    data_home()                                    the cache folder for datasets
    download(urls, destination, sha256=..., ...)   fetch one file (first mirror that works)
    RemoteFile(filename, urls, sha256, size, md5)  what the loaders know about a file

The cache folder is ``$CVCOURSE_DATA`` if that variable is set, else
``~/.cache/cvcourse``. Each dataset gets a subfolder (``mnist``, ``fashion_mnist``,
``cifar10``).

A download streams into a temporary file beside the destination
(:func:`cvcourse.fileio.atomic_path`) while computing its SHA-256; the file is renamed into
place only if the digest (and the size, when known) match. A network error, a wrong
checksum or an interruption (Ctrl-C) removes the temporary file, so the destination either
does not exist or is complete and verified. Only the standard library's ``urllib`` is
used (``file://`` URLs work too, which the tests use); the progress bar is tqdm's.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DownloadError", "RemoteFile", "data_home", "download"]

_ENV = "CVCOURSE_DATA"
_CHUNK = 1 << 20
_USER_AGENT = "cvcourse (https://pypi.org/project/cvcourse; dataset download)"


class DownloadError(OSError):
    """Every URL of a download failed (unreachable, or wrong size or checksum)."""


@dataclass(frozen=True)
class RemoteFile:
    """A published dataset file: its name, mirrors (tried in order) and checksums.

    ``sha256`` is verified on download; ``size`` (bytes) too when given. ``md5`` records
    the digest the dataset's authors publish, for reference.
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None
    md5: str | None = None


def data_home() -> Path:
    """The folder datasets are downloaded to: ``$CVCOURSE_DATA`` or ``~/.cache/cvcourse``.

    The folder is not created here (a download creates it).
    """
    value = os.environ.get(_ENV, "")
    if value.strip():
        return Path(value).expanduser()
    return Path.home() / ".cache" / "cvcourse"


def _default_opener(url: str, timeout: float):
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (URLs are ours)


def _content_length(response) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _fetch_one(url, destination, sha256, size, progress, opener, timeout) -> None:
    """Stream ``url`` into ``destination`` atomically; raise on any mismatch."""
    from tqdm.auto import tqdm

    from ..fileio import atomic_path

    with atomic_path(destination) as tmp:
        digest = hashlib.sha256()
        received = 0
        with opener(url, timeout) as response:
            total = _content_length(response) or size
            with (
                open(tmp, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=destination.name,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if size is not None and received != size:
            raise ValueError(f"got {received} bytes, expected {size}")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValueError(f"sha256 of the data is {digest.hexdigest()}, expected {sha256}")


def download(
    urls,
    destination,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    opener=None,
    timeout: float = 60.0,
) -> Path:
    """Download a file to ``destination``, trying each URL in turn, verifying it.

    Parameters
    ----------
    urls:
        One URL or a sequence of mirror URLs of the same file (``https://``, ``http://``
        or ``file://``); the first that yields the right bytes wins.
    destination:
        Where the file goes; its folder is created if needed. An existing file there is
        replaced only by a complete, verified download.
    sha256:
        Expected hex digest; ``None`` skips the check (only for files without one).
    size:
        Expected size in bytes, or ``None``.
    progress:
        Show a tqdm progress bar (bytes received).
    opener:
        ``opener(url, timeout)`` returning a response with ``read(n)`` and, optionally,
        ``headers``, used as a context manager; defaults to ``urllib.request.urlopen``.
        Tests pass a fake one.
    timeout:
        Seconds to wait for the server before giving up on a URL.

    Returns
    -------
    ``destination`` as a ``Path``.

    Raises
    ------
    DownloadError
        No URL gave the expected bytes; the message lists each URL and why it failed.
        No partial file is left at ``destination`` (nor beside it).
    """
    if isinstance(urls, str):
        urls = (urls,)
    urls = tuple(urls)
    if not urls or not all(isinstance(u, str) and u for u in urls):
        raise ValueError(f"urls must be a URL or a non-empty sequence of URLs, got {urls!r}")
    if not isinstance(destination, (str, os.PathLike)):
        raise TypeError(
            f"destination must be a file path (str or Path), got {type(destination).__name__}"
        )
    if sha256 is not None and (
        not isinstance(sha256, str)
        or len(sha256) != 64
        or any(c not in "0123456789abcdef" for c in sha256.lower())
    ):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    destination = Path(destination).expanduser()
    opener = opener or _default_opener
    failures = []
    for url in urls:
        try:
            _fetch_one(url, destination, sha256, size, progress, opener, timeout)
            return destination
        except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
            failures.append(f"  {url}: {type(exc).__name__}: {exc}")
    raise DownloadError(
        f"could not download {destination.name} to {destination.parent}; nothing was saved. "
        "Tried:\n" + "\n".join(failures)
    )


def fetch(remote: RemoteFile, folder: Path, *, progress: bool = True) -> Path:
    """``folder / remote.filename``, downloading it first if it is not there."""
    path = Path(folder) / remote.filename
    if not path.is_file():
        if progress:
            print(f"Downloading {remote.filename} to {folder}")
        download(remote.urls, path, sha256=remote.sha256, size=remote.size, progress=progress)
    return path
