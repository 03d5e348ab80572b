"""Append-only column storage with amortised growth, read as views of the first n rows."""

from __future__ import annotations

import threading

import numpy as np


class ColumnStore:
    """Columns of one segment. Appends come from one thread; readers take :meth:`snapshot`."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self.n = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, columns: dict[str, np.ndarray], n: int) -> ColumnStore:
        """A store holding ``columns`` as they are (sealed segments: no copy)."""
        store = cls()
        store._arrays = dict(columns)
        store.n = n
        return store

    def append(self, columns: dict[str, np.ndarray], m: int) -> None:
        need = self.n + m
        with self._lock:
            for name, col in columns.items():
                arr = self._arrays.get(name)
                if arr is None or arr.shape[0] < need:
                    cap = max(1024, need, 2 * (arr.shape[0] if arr is not None else 0))
                    grown = np.empty((cap,) + col.shape[1:], dtype=col.dtype)
                    if arr is not None:
                        grown[: self.n] = arr[: self.n]
                    arr = grown
                    self._arrays[name] = arr
                arr[self.n : need] = col
            self.n = need

    def add_column(self, name: str, values: np.ndarray) -> None:
        """A column the rows so far lacked (a field added later): ``values`` holds one cell per row.

        Growing stores keep spare capacity, so the new array gets it too; later appends fill it.
        """
        with self._lock:
            if name in self._arrays:
                return
            cap = max(len(values), next((a.shape[0] for a in self._arrays.values()), len(values)))
            arr = np.empty((cap,) + values.shape[1:], dtype=values.dtype)
            arr[: len(values)] = values
            self._arrays[name] = arr

    def snapshot(self) -> tuple[dict[str, np.ndarray], int]:
        """The current arrays and row count; rows below n never change (but for delete ts)."""
        with self._lock:
            return dict(self._arrays), self.n

    def column(self, name: str) -> np.ndarray:
        with self._lock:
            return self._arrays[name][: self.n]

    def set_values(self, name: str, rows: np.ndarray, value: int | np.ndarray) -> None:
        """Set the cells at row offsets ``rows`` (below n) to ``value`` (one value, or one per row).

        Offsets, not a mask: a delete of one key must not cost a pass over every row.
        """
        with self._lock:
            self._arrays[name][: self.n][rows] = value

    def nbytes(self) -> int:
        with self._lock:
            return sum(int(a[: self.n].nbytes) for a in self._arrays.values())
