"""The error of a bulk import: Milvus's ErrImportFailed (code 2100), naming the file at fault."""

from __future__ import annotations

from common.errors import MilvusError

IMPORT_FAILED = 2100  # merr.ErrImportFailed


class ImportFileError(MilvusError):
    """A file (or a value in it) that cannot be imported; the job fails with this reason."""

    def __init__(self, detail: str, path: str = "") -> None:
        self.detail = detail
        self.path = path
        super().__init__(IMPORT_FAILED, f"{detail} (file '{path}')" if path else detail)

    def in_file(self, path: str) -> ImportFileError:
        return self if self.path else ImportFileError(self.detail, path)
