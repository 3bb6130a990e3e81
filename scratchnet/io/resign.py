"""Re-sign a hand-edited model document: write its ``document_sha256`` anew, after every other check.

A document whose checksum no longer matches was edited after it was saved, on purpose (a class name
corrected by hand) or by damage. Only the user can tell which, so ``scratchnet inspect --fix-checksum``
asks first. The fixed document must pass every other rule of the format, and every array checksum
must still verify, before the file is replaced (atomically, under the model's lock).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from scratchnet.core.errors import ModelFormatError
from scratchnet.io.lock import model_lock
from scratchnet.io.manifest import DIGEST_FIELD, Limits, sha256_hex
from scratchnet.io.model import model_paths, pair_of, read_model, replace_file

__all__ = ["fix_checksum"]


def fix_checksum(path: str | os.PathLike[str], *, limits: Limits = Limits()) -> str | None:
    """Write the document checksum of the model ``path`` anew; the new checksum, or None when it was
    right already. ModelFormatError when anything but the checksum is wrong (nothing is written)."""
    json_path = model_paths(path)[0]
    with model_lock(json_path, purpose="fixing its checksum"):
        try:
            read_model(json_path, limits=limits)
            return None
        except ModelFormatError as error:
            if "document checksum mismatch" not in str(error):
                raise
        raw = json_path.read_bytes()  # read_model read it within the limits just now
        stated = json.loads(raw)[DIGEST_FIELD].encode("ascii")  # 64 hex digits, found once: checked
        digest = sha256_hex(raw.replace(stated, b"0" * 64))
        fixed = raw.replace(stated, digest.encode("ascii"))
        pair_of(json_path, fixed, limits)  # every other rule, and every array checksum
        replace_file(Path(json_path), lambda handle: handle.write(fixed))
    return digest
