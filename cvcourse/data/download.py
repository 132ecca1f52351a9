"""Downloading dataset files: checksummed, with progress, never leaving a partial file.

    data_home()                                    the cache folder for datasets
    download(urls, destination, sha256=..., ...)   fetch one file (first mirror that works)
    RemoteFile(filename, urls, sha256, size, md5)  what the loaders know about a file

The cache folder is ``$CVCOURSE_DATA`` if that variable is set, else
``~/.cache/cvcourse``. Each dataset gets a subfolder (``mnist``, ``fashion_mnist``,
``cifar10``).

The downloading is pooch's (:func:`pooch.retrieve`, as SciPy and scikit-image use it): the
file streams into a temporary file beside the destination, its SHA-256 is checked, and only
then is it renamed into place; a network error, a wrong checksum or an interruption (Ctrl-C)
removes the temporary file, so the destination either does not exist or is complete and
verified. What pooch does not do is added here: the mirrors (each URL in turn until one
gives the right bytes), the size check, the file mode a plain ``open`` would give (pooch's
temporary file is owner-only) and one error listing every URL and why it failed. ``http://``
and ``https://`` go through pooch's :class:`pooch.HTTPDownloader` (requests); other URLs
(``file://``, which the tests use) and the tests' fake ``opener`` through the standard
library's ``urllib``. The progress bar is tqdm's, handed to pooch.
"""

from __future__ import annotations

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


def _urlopen(url: str, timeout: float):
    """``urllib.request.urlopen`` with our User-Agent (``file://`` URLs too)."""
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


class _Progress:
    """pooch's progress-bar protocol (``total``, ``update``, ``reset``, ``close``) over tqdm.

    pooch tests the bar's truth, which tqdm refuses while the total is unknown; and a
    server that sends no length (total 0) keeps the size the caller gave.
    """

    def __init__(self, bar):
        self.bar = bar

    @property
    def total(self):
        return self.bar.total

    @total.setter
    def total(self, value) -> None:
        if value:
            self.bar.total = value
        self.bar.refresh()  # show the size from the start

    def update(self, n: int) -> None:
        self.bar.update(n)

    def reset(self) -> None:
        self.bar.reset()

    def close(self) -> None:
        self.bar.close()


class _OpenerDownloader:
    """A pooch downloader that streams ``opener(url, timeout)`` into the output file.

    ``opener`` returns a context manager with ``read(n)`` and, optionally, ``headers``.
    """

    def __init__(self, opener, timeout: float, progress: _Progress):
        self.opener, self.timeout, self.progress = opener, timeout, progress

    def __call__(self, url: str, output_file: str, pooch, check_only: bool = False) -> None:
        with self.opener(url, self.timeout) as response, open(output_file, "wb") as out:
            self.progress.total = _content_length(response)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                self.progress.update(len(chunk))


class _Verified:
    """A pooch downloader: ``inner``'s download, then the checks pooch lacks.

    These are the size check and the mode a plain ``open`` gives (before pooch checks the
    SHA-256 and renames the file).
    """

    def __init__(self, inner, size: int | None):
        self.inner, self.size = inner, size

    def __call__(self, url: str, output_file: str, pooch, check_only: bool = False) -> None:
        from ..fileio import _umask

        self.inner(url, output_file, pooch)
        received = os.path.getsize(output_file)
        if self.size is not None and received != self.size:
            raise ValueError(f"got {received} bytes, expected {self.size}")
        os.chmod(output_file, 0o666 & ~_umask())


def _fetch_one(url, destination, sha256, size, progress, opener, timeout) -> None:
    """Download ``url`` to ``destination`` with pooch; raise on any failure or mismatch."""
    import logging

    import pooch
    from tqdm.auto import tqdm

    progress_bar = _Progress(
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=destination.name,
            disable=not progress,
            leave=False,
        )
    )
    if opener is None and url.startswith(("http://", "https://")):
        inner = pooch.HTTPDownloader(
            progressbar=progress_bar if progress else False,
            chunk_size=_CHUNK,
            timeout=timeout,
            headers={"User-Agent": _USER_AGENT},
        )
    else:
        inner = _OpenerDownloader(opener or _urlopen, timeout, progress_bar)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # no "Downloading data from ..." line: we print our own
    try:
        pooch.retrieve(
            url,
            known_hash=None if sha256 is None else f"sha256:{sha256.lower()}",
            fname=destination.name,
            path=destination.parent,
            downloader=_Verified(inner, size),
        )
    finally:
        logger.setLevel(level)
        progress_bar.close()


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
        kept, without downloading, if it has the expected ``sha256`` (or if ``sha256`` is
        ``None``: pooch's cache rule); otherwise it is replaced only by a complete, verified
        download.
    sha256:
        Expected hex digest; ``None`` skips the check (only for files without one).
    size:
        Expected size in bytes, or ``None``.
    progress:
        Show a tqdm progress bar (bytes received).
    opener:
        ``opener(url, timeout)`` returning a response with ``read(n)`` and, optionally,
        ``headers``, used as a context manager; by default pooch's ``HTTPDownloader``
        fetches ``http(s)://`` URLs and ``urllib.request.urlopen`` the others. Tests pass a
        fake one.
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
    failures = []
    for url in urls:
        try:
            _fetch_one(url, destination, sha256, size, progress, opener, timeout)
            return destination
        except (OSError, ValueError) as exc:
            # URLError, requests' errors and timeouts are OSErrors; a wrong checksum or size
            # is a ValueError
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
