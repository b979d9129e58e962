"""A compact set of 64-bit digests with a small integer payload (the line an id was first seen on).

Checking a million-line input for duplicate ids must not cost hundreds of megabytes: a ``dict`` of
a million ints takes ~120 MB, this open-addressing table ~24 MB (two ``array`` columns, load <= 1/2).
"""

from __future__ import annotations

from array import array

_MIN_SLOTS = 1 << 12


class DigestTable:
    __slots__ = ("_keys", "_mask", "_values", "size")

    def __init__(self) -> None:
        self._keys = array("Q", bytes(8 * _MIN_SLOTS))
        self._values = array("L", bytes(array("L").itemsize * _MIN_SLOTS))
        self._mask = _MIN_SLOTS - 1
        self.size = 0

    def setdefault(self, digest: int, value: int = 0) -> int | None:
        """Insert ``digest`` with ``value`` unless present; return the value it already had, or None."""
        digest = digest or 1  # 0 marks an empty slot
        keys, mask = self._keys, self._mask
        index = digest & mask
        while True:
            found = keys[index]
            if found == digest:
                return int(self._values[index])
            if found == 0:
                break
            index = (index + 1) & mask
        keys[index] = digest
        self._values[index] = value
        self.size += 1
        if self.size * 2 > mask:
            self._grow()
        return None

    def __contains__(self, digest: int) -> bool:
        digest = digest or 1
        keys, mask = self._keys, self._mask
        index = digest & mask
        while (found := keys[index]) != 0:
            if found == digest:
                return True
            index = (index + 1) & mask
        return False

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        slots = (self._mask + 1) * 2
        self._keys = array("Q", bytes(8 * slots))
        self._values = array("L", bytes(array("L").itemsize * slots))
        self._mask = slots - 1
        self.size = 0
        for key, value in zip(old_keys, old_values, strict=True):
            if key:
                self.setdefault(key, value)
