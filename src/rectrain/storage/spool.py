"""Listings of any length in flat memory: records sorted on disk, walked and joined as streams.

A dataset of ten million crops must not become ten million Python objects (about 1.5-3.5 KB
each with their strings, dict slots and dataclass): a push, pull, pack or unpack keeps a few
thousand records in memory and the rest in sorted runs on disk (:class:`SortedSpool`), like
``sort(1)``. Everything is ordered by the path's code points, which is the order of its UTF-8
bytes: the order in which S3 lists keys and in which ``manifest.jsonl`` is written, so local
files, objects and manifest entries are matched by one merge (:func:`merge_join`), never by a
dictionary of everything.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, List, Optional, Sequence, Tuple

from rectrain.outputs import open_stream, remove_file, remove_tree

RUN = 4_096  # records sorted in memory before they go to disk as one run
MAX_RUNS = 32  # runs of one level merged into one run of the next (files open at once, at most)
_KEY = itemgetter(0)


class SortedSpool:
    """Records (sequences whose first field is the str they are sorted by), any number of them.
    ``add`` them in any order, then iterate (as often as needed): sorted, in bounded memory.
    Records must be JSON-able; they come back as lists."""

    def __init__(self, run: int = RUN, folder: Optional[Path] = None) -> None:
        self.run = max(2, run)
        self.count = 0
        self.size_total = 0  # what the caller adds up (local_files: the files' bytes)
        self._buf: List[Sequence[Any]] = []
        self._runs: List[Tuple[int, Path]] = []  # (level, file): a level-n run merges 32 of level n-1
        self._dir: Optional[Path] = None
        self._parent = folder
        self._sorted = False
        self._serial = 0

    def add(self, record: Sequence[Any]) -> None:
        self._buf.append(record)
        self._sorted = False
        self.count += 1
        if len(self._buf) >= self.run:
            self._spill()

    def _folder(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="rectrain-spool-", dir=self._parent))
        return self._dir

    def _spill(self) -> None:
        self._buf.sort(key=_KEY)
        self._serial += 1
        path = self._folder() / f"run-{self._serial:08d}.jsonl"
        with open_stream(path, "w") as fh:  # a run in the spool's private temporary folder
            fh.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in self._buf)
        self._buf = []
        self._runs.append((0, path))
        level = 0
        while sum(1 for lv, _ in self._runs if lv == level) >= MAX_RUNS:
            self._compact(level)
            level += 1

    def _compact(self, level: int) -> None:
        """Merge the runs of one level into one run of the next (each record is rewritten once
        per level: the work grows as n log n, and at most MAX_RUNS files are open per merge)."""
        self._serial += 1
        path = self._folder() / f"run-{self._serial:08d}.jsonl"
        merging = [p for lv, p in self._runs if lv == level]
        handles = [open(p, encoding="utf-8") for p in merging]  # noqa: SIM115 - closed below
        try:
            with open_stream(path, "w") as out:
                for rec in heapq.merge(*(_read_run(h) for h in handles), key=_KEY):
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        finally:
            for h in handles:
                h.close()
        for p in merging:
            remove_file(p)
        self._runs = [(lv, p) for lv, p in self._runs if lv != level] + [(level + 1, path)]

    def __iter__(self) -> Iterator[Sequence[Any]]:
        if not self._sorted:
            self._buf.sort(key=_KEY)
            self._sorted = True
        if not self._runs:
            return iter(self._buf)
        return self._merged()

    def _merged(self) -> Iterator[Sequence[Any]]:
        handles: List[IO[str]] = [open(p, encoding="utf-8") for _, p in self._runs]  # noqa: SIM115
        try:
            yield from heapq.merge(*(_read_run(h) for h in handles), iter(self._buf), key=_KEY)
        finally:
            for h in handles:
                h.close()

    def close(self) -> None:
        self._buf = []
        self._runs = []
        if self._dir is not None:
            remove_tree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> SortedSpool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _read_run(handle: IO[str]) -> Iterator[List[Any]]:
    for line in handle:
        yield json.loads(line)


def merge_join(
    left: Iterable[Sequence[Any]], right: Iterable[Sequence[Any]]
) -> Iterator[Tuple[str, Optional[Sequence[Any]], Optional[Sequence[Any]]]]:
    """``(key, left record or None, right record or None)`` for every key of two streams sorted
    by their first field, in order. A stream out of order (or with a key twice) is a ValueError:
    its records cannot be matched by a merge."""
    lit, rit = iter(left), iter(right)
    lrec, rrec = next(lit, None), next(rit, None)
    last_l = last_r = None
    while lrec is not None or rrec is not None:
        lkey = lrec[0] if lrec is not None else None
        rkey = rrec[0] if rrec is not None else None
        if lkey is not None and last_l is not None and lkey <= last_l:
            raise ValueError(f"not sorted: '{lkey}' after '{last_l}'")
        if rkey is not None and last_r is not None and rkey <= last_r:
            raise ValueError(f"not sorted: '{rkey}' after '{last_r}'")
        if rkey is None or (lkey is not None and lkey < rkey):
            yield lkey, lrec, None  # type: ignore[misc]
            last_l, lrec = lkey, next(lit, None)
        elif lkey is None or rkey < lkey:
            yield rkey, None, rrec
            last_r, rrec = rkey, next(rit, None)
        else:
            yield lkey, lrec, rrec
            last_l, last_r = lkey, rkey
            lrec, rrec = next(lit, None), next(rit, None)


__all__ = ["SortedSpool", "merge_join"]
