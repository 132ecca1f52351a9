"""download(), data_home() and the loaders' download=True, all without network.

The URLs are file:// URLs of files made in tmp_path, http:// URLs of a server on 127.0.0.1
(pooch's HTTPDownloader, what students' downloads use), or a fake opener.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import stat
import threading

import numpy as np
import pytest

import cvcourse.data.cifar as cifar_module
import cvcourse.data.mnist as mnist_module
from cvcourse.data import DownloadError, RemoteFile, data_home, download, load_cifar10, load_mnist

from .formats import idx_bytes, mnist_like, write_cifar_archive


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serve(tmp_path, data: bytes, name="file.bin") -> str:
    server = tmp_path / "server"
    server.mkdir(exist_ok=True)
    (server / name).write_bytes(data)
    return (server / name).as_uri()


def _only_file(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_file_url_writes_verified_file(tmp_path):
    data = bytes(range(256)) * 1000
    url = _serve(tmp_path, data)
    dest = tmp_path / "cache" / "sub" / "file.bin"
    out = download(url, dest, sha256=_sha256(data), size=len(data), progress=False)
    assert out == dest and dest.read_bytes() == data
    assert _only_file(dest.parent) == ["file.bin"]


def test_download_checksum_mismatch_raises_and_leaves_no_file(tmp_path):
    url = _serve(tmp_path, b"the wrong bytes")
    dest = tmp_path / "cache" / "file.bin"
    pooch_says = r"SHA256 hash of downloaded file \(file\.bin\) does not match the known hash"
    with pytest.raises(DownloadError, match=rf"(?s)file\.bin.*nothing was saved.*{pooch_says}"):
        download(url, dest, sha256=_sha256(b"the right bytes"), progress=False)
    assert not dest.exists()
    assert _only_file(dest.parent) == []  # no temporary file either


def test_download_size_mismatch_raises_and_leaves_no_file(tmp_path):
    data = b"x" * 100
    url = _serve(tmp_path, data)
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(DownloadError, match=r"got 100 bytes, expected 101"):
        download(url, dest, sha256=_sha256(data), size=101, progress=False)
    assert _only_file(dest.parent) == []


def test_failed_download_keeps_an_existing_destination_untouched(tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError):
        download(_serve(tmp_path, b"new"), dest, sha256="0" * 64, progress=False)
    assert dest.read_bytes() == b"old"


def test_download_missing_url_is_a_download_error(tmp_path):
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(DownloadError, match=r"nope\.bin: .*Error"):
        download((tmp_path / "nope.bin").as_uri(), dest, progress=False)
    assert not dest.exists()


@pytest.fixture
def http_server(tmp_path):
    """``(base URL, folder it serves, User-Agents it was sent)``: a server on 127.0.0.1."""
    folder = tmp_path / "www"
    folder.mkdir()
    agents = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            agents.append(self.headers.get("User-Agent"))
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder, agents
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_over_http_tries_mirrors_and_verifies(http_server, tmp_path):
    base, folder, agents = http_server
    data = bytes(range(256)) * 4000  # about 1 MiB: several chunks
    (folder / "good.bin").write_bytes(data)
    (folder / "bad.bin").write_bytes(data[:-1] + b"!")
    urls = (base + "missing.bin", base + "bad.bin", base + "good.bin")
    dest = tmp_path / "cache" / "file.bin"
    assert download(urls, dest, sha256=_sha256(data), size=len(data), progress=False) == dest
    assert dest.read_bytes() == data and _only_file(dest.parent) == ["file.bin"]
    assert len(agents) == 3 and all(a.startswith("cvcourse") for a in agents)


def test_download_over_http_lists_every_failure_and_saves_nothing(http_server, tmp_path):
    base, folder, _ = http_server
    (folder / "bad.bin").write_bytes(b"corrupt")
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(DownloadError) as caught:
        download((base + "missing.bin", base + "bad.bin"), dest, sha256="0" * 64, progress=False)
    message = str(caught.value)
    assert "missing.bin: HTTPError: 404" in message
    assert "bad.bin: ValueError: SHA256 hash of downloaded file" in message
    assert _only_file(dest.parent) == []


def test_download_over_http_shows_a_progress_bar(http_server, tmp_path, capsys):
    base, folder, _ = http_server
    data = b"z" * 5000
    (folder / "f").write_bytes(data)
    download(base + "f", tmp_path / "f", sha256=_sha256(data), progress=True)
    err = capsys.readouterr().err
    assert "f:" in err and "4.88k" in err.lower()


def test_download_prints_nothing_without_progress(tmp_path, capfd):
    # pooch logs "Downloading data from ..." to the real stderr unless told not to
    data = b"quiet" * 100
    download(_serve(tmp_path, data), tmp_path / "f", sha256=_sha256(data), progress=False)
    assert capfd.readouterr() == ("", "")


def test_downloaded_file_gets_the_mode_a_plain_open_gives(tmp_path):
    # pooch's temporary file is owner-only; a shared data folder needs the usual mode
    data = b"shared"
    old = os.umask(0o022)
    try:
        download(_serve(tmp_path, data), tmp_path / "f", sha256=_sha256(data), progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_an_existing_verified_file_is_kept_without_downloading(tmp_path):
    data = b"already here"
    dest = tmp_path / "f"
    dest.write_bytes(data)
    gone = (tmp_path / "nowhere.bin").as_uri()
    assert download(gone, dest, sha256=_sha256(data), progress=False) == dest
    assert dest.read_bytes() == data


class _FakeResponse(io.BytesIO):
    """What urlopen returns: read(n), headers, a context manager."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(n, 1000) if n and n > 0 else n)


def test_download_tries_mirrors_in_order_until_one_works(tmp_path):
    data = b"payload" * 500
    calls = []

    def opener(url, timeout):
        calls.append(url)
        if url == "https://broken.example/f":
            raise OSError("host unreachable")
        if url == "https://corrupt.example/f":
            return _FakeResponse(b"garbage")
        return _FakeResponse(data)

    urls = ("https://broken.example/f", "https://corrupt.example/f", "https://good.example/f")
    dest = tmp_path / "f"
    download(urls, dest, sha256=_sha256(data), progress=False, opener=opener)
    assert calls == list(urls) and dest.read_bytes() == data


def test_download_interrupted_midway_leaves_no_partial_file(tmp_path):
    data = b"y" * 10_000

    def opener(url, timeout):
        return _FakeResponse(data, fail_after=3000)

    dest = tmp_path / "cache" / "f"
    with pytest.raises(DownloadError, match=r"ConnectionResetError"):
        download("https://example/f", dest, sha256=_sha256(data), progress=False, opener=opener)
    assert _only_file(dest.parent) == []


def test_download_shows_a_progress_bar(tmp_path, capsys):
    data = b"z" * 5000
    download(_serve(tmp_path, data), tmp_path / "f", sha256=_sha256(data), progress=True)
    err = capsys.readouterr().err
    assert "f:" in err and "4.88k" in err.lower()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"urls": ()}, ValueError, "urls must be a URL"),
        ({"urls": [3]}, ValueError, "urls must be a URL"),
        ({"destination": 4}, TypeError, "destination must be a file path"),
        ({"sha256": "abc"}, ValueError, "sha256 must be 64 hex digits"),
    ],
)
def test_download_validates_arguments(tmp_path, kwargs, error, match):
    args = {"urls": "file:///x", "destination": tmp_path / "x"} | kwargs
    with pytest.raises(error, match=match):
        download(args.pop("urls"), args.pop("destination"), **args)


def test_data_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CVCOURSE_DATA", str(tmp_path / "d"))
    assert data_home() == tmp_path / "d"
    monkeypatch.delenv("CVCOURSE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_home() == tmp_path / ".cache" / "cvcourse"


def test_published_checksums_are_well_formed():
    remotes = [*mnist_module._MNIST_FILES.values(), *mnist_module._FASHION_FILES.values()]
    remotes.append(cifar_module._ARCHIVE)
    for remote in remotes:
        assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0
        assert len(remote.md5) == 32 and remote.size > 0
        assert all(u.endswith(remote.filename) for u in remote.urls)
        assert all(u.startswith(("https://", "http://")) for u in remote.urls)


# ---------------------------------------------------------------------------------------------
# the loaders with download=True


def test_load_mnist_download_fetches_missing_files_into_root(tmp_path, monkeypatch):
    images, labels = mnist_like(4, seed=0)
    files = {}
    for name, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        gz = gzip.compress(idx_bytes(array))
        url = _serve(tmp_path, gz, name + ".gz")
        files[name] = RemoteFile(name + ".gz", (url,), _sha256(gz), len(gz))
    monkeypatch.setattr(mnist_module, "_MNIST_FILES", files)
    root = tmp_path / "data"
    x, y = load_mnist(root, "train", download=True, progress=False)
    np.testing.assert_array_equal(y, labels)
    assert _only_file(root) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    # second call: files present, nothing downloaded (the server copy is gone)
    for p in (tmp_path / "server").iterdir():
        p.unlink()
    np.testing.assert_array_equal(load_mnist(root, "train", download=True).images, x)


def test_load_mnist_download_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    gz = gzip.compress(idx_bytes(mnist_like(2, seed=0)[0]))
    url = _serve(tmp_path, gz, "train-images-idx3-ubyte.gz")
    bad = RemoteFile("train-images-idx3-ubyte.gz", (url,), "f" * 64, len(gz))
    monkeypatch.setattr(mnist_module, "_MNIST_FILES", {"train-images-idx3-ubyte": bad})
    monkeypatch.setenv("CVCOURSE_DATA", str(tmp_path / "cache"))
    with pytest.raises(DownloadError, match="sha256"):
        load_mnist(split="train", download=True, progress=False)
    assert _only_file(tmp_path / "cache" / "mnist") == []


def test_load_cifar10_download_fetches_the_archive_into_the_cache(tmp_path, monkeypatch):
    made = tmp_path / "made" / "cifar-10-python.tar.gz"
    contents = write_cifar_archive(made, n=2)
    data = made.read_bytes()
    remote = RemoteFile(made.name, (made.as_uri(),), _sha256(data), len(data))
    monkeypatch.setattr(cifar_module, "_ARCHIVE", remote)
    monkeypatch.setenv("CVCOURSE_DATA", str(tmp_path / "cache"))
    x, y = load_cifar10(split="test", download=True, progress=False, dtype=np.uint8)
    np.testing.assert_array_equal(x.reshape(2, -1), contents["test_batch"][0])
    assert _only_file(tmp_path / "cache" / "cifar10") == ["cifar-10-python.tar.gz"]
