"""The CSV files uploaded to the Train mode (``POST /api/train/upload``): kept in memory, the last
few only, each read by the same bounded reader as ``scratchnet train --data`` from a file the server
names in a private temporary folder (a request never names a path)."""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scratchnet.core.errors import ScratchnetError
from scratchnet.data import Dataset
from scratchnet.data.own_sets import load_data
from scratchnet.serve.api import RequestError
from scratchnet.serve.train_request import UPLOAD_BYTES, UPLOADS_KEPT


@dataclass(frozen=True)
class Download:
    """An answer that is a file to download, not JSON."""

    data: bytes
    content_type: str
    filename: str


def read_upload(data: bytes, test_fraction: float, name: str) -> Dataset:
    """The dataset of an uploaded CSV file, its test part held out (stratified) as ``--data`` does it."""
    with tempfile.TemporaryDirectory(prefix="scratchnet-upload-") as folder:
        path = Path(folder) / f"{name}.csv"
        path.write_bytes(data)
        try:
            dataset = load_data(path, test_fraction=test_fraction, name=name)
        except ScratchnetError as error:
            message = str(error).replace(os.fspath(path), f"the uploaded file {name}.csv")
            raise RequestError(message[:300]) from None
    source = dict(dataset.source or {})
    source.update(path=f"{name}.csv (uploaded to scratchnet serve --train)", fingerprint=None)
    return replace(dataset, source=source)


class Uploads:
    """The last :data:`UPLOADS_KEPT` uploads, by id."""

    def __init__(self) -> None:
        self.kept: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, data: bytes) -> dict[str, Any]:
        if len(data) > UPLOAD_BYTES:
            raise RequestError(f"the file is {len(data)} bytes; the limit is {UPLOAD_BYTES}", 413)
        upload = "upload-" + secrets.token_hex(4)
        dataset = read_upload(data, 0.0, upload)
        with self.lock:
            self.kept[upload] = data
            while len(self.kept) > UPLOADS_KEPT:
                self.kept.popitem(last=False)
        return {
            "upload": upload,
            "rows": len(dataset.train_labels),
            "features": list(dataset.sample_shape),
            "kind": dataset.kind,
            "classes": dataset.num_classes,
            "class_names": list(dataset.class_names),
        }

    def dataset(self, upload: str, test_fraction: float) -> Dataset:
        with self.lock:
            data = self.kept.get(upload)
        if data is None:
            raise RequestError(f"no upload {upload[:40]!r} is kept (the server keeps the last {UPLOADS_KEPT})", 404)
        return read_upload(data, test_fraction, upload)
