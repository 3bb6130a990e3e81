"""Downloading from mirrors, against a real HTTP server on 127.0.0.1 (never any other address)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import scratchnet.data.download as download_module
from scratchnet.core.errors import DatasetError
from scratchnet.data import DATASETS, DatasetSpec, FileSpec, load_dataset
from scratchnet.data.download import download_file

FILENAME = "t10k-labels-idx1-ubyte.gz"
RAW = bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes([3, 1, 4, 1, 5])
SHA = hashlib.sha256(RAW).hexdigest()


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fail any connection to a non-loopback address; ignore proxies; isolate the data dirs."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("SCRATCHNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        assert address[0] in ("127.0.0.1", "localhost"), f"test tried to contact {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving a temporary folder; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL with nothing listening (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback port that accepts connections (via the backlog) but never answers: a timeout."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"
    finally:
        s.close()


def publish(root: Path, folder: str, content: bytes, filename: str = FILENAME) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / filename).write_bytes(content)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_success(server: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, root = server
    content = gzip.compress(RAW)
    publish(root, "m1", content)
    dest = tmp_path / "dest" / "mnist"
    path = download_file(FILENAME, [f"{base}/m1/"], dest, SHA, progress=True, timeout=5)
    assert path == dest / FILENAME
    assert path.read_bytes() == content
    assert listing(dest) == [FILENAME]  # no temporary file left
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: no progress output


@pytest.mark.parametrize("content", [RAW, gzip.compress(RAW, compresslevel=1)], ids=["plain", "recompressed"])
def test_checksum_is_of_decompressed_bytes(server: tuple[str, Path], tmp_path: Path, content: bytes) -> None:
    base, root = server
    publish(root, "m", content)
    path = download_file(FILENAME, [f"{base}/m"], tmp_path / "d", SHA, progress=False, timeout=5)
    assert path.read_bytes() == content


def test_checksum_mismatch_leaves_nothing(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    publish(root, "m1", gzip.compress(RAW[:-1] + b"\x09"))
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        download_file(FILENAME, [f"{base}/m1/"], dest, SHA, progress=False, timeout=5)
    assert f"{base}/m1/{FILENAME}" in str(info.value)
    assert listing(dest) == []


def test_damaged_gzip_from_mirror_leaves_nothing(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    publish(root, "m1", gzip.compress(RAW)[:-4])
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="bad data: truncated gzip"):
        download_file(FILENAME, [f"{base}/m1/"], dest, SHA, progress=False, timeout=5)
    assert listing(dest) == []


def test_404_falls_back_to_next_mirror(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    content = gzip.compress(RAW)  # once: the gzip header holds the time of compression
    publish(root, "good", content)
    path = download_file(
        FILENAME, [f"{base}/missing/", f"{base}/good/"], tmp_path / "d", SHA, progress=False, timeout=5
    )
    assert path.read_bytes() == content


def test_refused_connection_falls_back(server: tuple[str, Path], dead_url: str, tmp_path: Path) -> None:
    base, root = server
    publish(root, "good", gzip.compress(RAW))
    path = download_file(FILENAME, [dead_url, f"{base}/good/"], tmp_path / "d", SHA, progress=False, timeout=5)
    assert path.exists()


def test_timeout_falls_back(server: tuple[str, Path], silent_url: str, tmp_path: Path) -> None:
    base, root = server
    publish(root, "good", gzip.compress(RAW))
    path = download_file(FILENAME, [silent_url, f"{base}/good/"], tmp_path / "d", SHA, progress=False, timeout=0.5)
    assert path.exists()


def test_bad_checksum_mirror_falls_back(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    publish(root, "bad", gzip.compress(b"not the file"))
    publish(root, "good", gzip.compress(RAW))
    dest = tmp_path / "d"
    download_file(FILENAME, [f"{base}/bad/", f"{base}/good/"], dest, SHA, progress=False, timeout=5)
    assert listing(dest) == [FILENAME]


def test_all_mirrors_fail(server: tuple[str, Path], dead_url: str, tmp_path: Path) -> None:
    base, _ = server
    dest = tmp_path / "dest"
    mirrors = [f"{base}/missing/", dead_url, "file:///etc/"]
    with pytest.raises(DatasetError) as info:
        download_file(FILENAME, mirrors, dest, SHA, progress=False, timeout=5)
    message = str(info.value)
    assert message.startswith(f"could not download {FILENAME} from any mirror")
    assert "HTTP 404" in message and "refused" in message and "unsupported URL scheme" in message
    assert "\n" not in message
    assert listing(dest) == []


def test_size_cap(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    publish(root, "m", gzip.compress(RAW))
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="limit"):
        download_file(FILENAME, [f"{base}/m/"], dest, SHA, progress=False, timeout=5, max_bytes=10)
    assert listing(dest) == []


def test_failed_download_keeps_existing_file(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / FILENAME).write_bytes(b"old")
    with pytest.raises(DatasetError):
        download_file(FILENAME, [f"{base}/missing/"], dest, SHA, progress=False, timeout=5)
    assert (dest / FILENAME).read_bytes() == b"old"


@pytest.mark.parametrize("where", ["_fetch", "decompressed_sha256"])
def test_keyboard_interrupt_removes_temp_file(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    base, root = server
    publish(root, "m", gzip.compress(RAW))
    real = getattr(download_module, where)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # do the real work first, so a partial file exists
        raise KeyboardInterrupt

    monkeypatch.setattr(download_module, where, interrupted)
    dest = tmp_path / "dest"
    with pytest.raises(KeyboardInterrupt):
        download_file(FILENAME, [f"{base}/m/", f"{base}/m/"], dest, SHA, progress=False, timeout=5)
    assert listing(dest) == []


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal(server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, root = server
    publish(root, "m", gzip.compress(RAW))
    fake = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    download_file(FILENAME, [f"{base}/m/"], tmp_path / "d", SHA, progress=True, timeout=5)
    out = fake.getvalue()
    assert out.startswith("\r") and "100%" in out and out.endswith("\n")

    fake2 = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake2)
    download_file(FILENAME, [f"{base}/m/"], tmp_path / "d2", SHA, progress=False, timeout=5)
    assert fake2.getvalue() == ""


def test_no_mirrors() -> None:
    with pytest.raises(DatasetError, match="no download mirrors"):
        download_file(FILENAME, [], Path("/nonexistent-should-not-matter"), SHA, progress=False, timeout=1)


# --- load_dataset downloading into the cache ------------------------------------------------


def _tiny(root: Path) -> DatasetSpec:
    raws = {
        "train-images-idx3-ubyte.gz": bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 2, 2) + bytes(range(8)),
        "train-labels-idx1-ubyte.gz": bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([1, 2]),
        "t10k-images-idx3-ubyte.gz": bytes([0, 0, 8, 3]) + struct.pack(">3I", 1, 2, 2) + bytes(range(4)),
        "t10k-labels-idx1-ubyte.gz": bytes([0, 0, 8, 1]) + struct.pack(">I", 1) + bytes([7]),
    }
    for name, raw in raws.items():
        publish(root, "tiny", gzip.compress(raw), name)
    shapes = [(2, 2, 2), (2,), (1, 2, 2), (1,)]
    files = [FileSpec(n, hashlib.sha256(r).hexdigest(), s) for (n, r), s in zip(raws.items(), shapes)]
    return DatasetSpec("tiny", files[0], files[1], files[2], files[3], class_names=tuple("0123456789"), mirrors=())


def test_load_dataset_downloads_into_the_data_dir_in_effect(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = server
    spec = _tiny(root)
    monkeypatch.setitem(DATASETS, "tiny", spec)
    data = tmp_path / "data"
    ds = load_dataset("tiny", data, mirrors=[f"{base}/tiny/"], progress=False, timeout=5)
    assert ds.train_labels.tolist() == [1, 2] and ds.test_images.shape == (1, 2, 2)
    cache = tmp_path / "xdg-cache" / "scratchnet" / "tiny"
    assert listing(data / "tiny") == sorted(f.filename for f in spec.files)  # where --data-dir said
    assert not cache.exists()
    assert load_dataset("tiny", data, download=False).test_labels.tolist() == [7]
    ds = load_dataset("tiny", mirrors=[f"{base}/tiny/"], progress=False, timeout=5)  # no directory given: the cache
    assert listing(cache) == sorted(f.filename for f in spec.files)


def test_load_dataset_download_failure_is_one_clear_error(
    dead_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DATASETS, "tiny", _tiny(tmp_path / "unused"))
    data = tmp_path / "data"
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", data, mirrors=[dead_url], progress=False, timeout=5)
    message = str(info.value)
    assert "download failed" in message and "refused" in message
    assert f"in {data / 'tiny'}" in message
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        assert name in message
    assert "--data-dir" in message and "SCRATCHNET_DATA_DIR" in message
    assert "\n" not in message
    assert listing(data / "tiny") == []


def test_a_failed_first_download_leaves_no_empty_folders(
    dead_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DATASETS, "tiny", _tiny(tmp_path / "unused"))
    cache = tmp_path / "home" / ".cache" / "scratchnet"
    with pytest.raises(DatasetError):
        load_dataset("tiny", cache, mirrors=[dead_url], progress=False, timeout=5)
    assert not (tmp_path / "home").exists()
    kept = tmp_path / "kept"
    (kept / "tiny").mkdir(parents=True)
    with pytest.raises(DatasetError):
        load_dataset("tiny", kept, mirrors=[dead_url], progress=False, timeout=5)
    assert (kept / "tiny").is_dir()  # a folder that was there before stays
