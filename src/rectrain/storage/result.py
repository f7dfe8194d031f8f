"""What a push or pull did (:class:`TransferResult`), and the note a failed one adds to its error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from rectrain.errors import RectrainError
from rectrain.fsutil import format_size

LISTED = 1000  # planned transfers and deletions kept by name (memory stays flat at any size)


@dataclass
class TransferResult:
    direction: str  # "push" or "pull"
    source: str
    destination: str
    files_total: int = 0
    bytes_total: int = 0
    transferred: int = 0
    bytes_transferred: int = 0
    skipped: int = 0
    deleted: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    manifest: Optional[str] = None
    packed: bool = False
    planned: List[str] = field(default_factory=list)  # what was (or, dry-run, would be) transferred ...
    deletions: List[str] = field(default_factory=list)
    planned_count: int = 0  # ... the first LISTED of each are kept, the counts are complete
    deletions_count: int = 0

    def plan(self, item: str) -> None:
        self.planned_count += 1
        if len(self.planned) < LISTED:
            self.planned.append(item)

    def plan_deletion(self, item: str) -> None:
        self.deletions_count += 1
        if len(self.deletions) < LISTED:
            self.deletions.append(item)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verb = (
            "would transfer" if self.dry_run else ("uploaded" if self.direction == "push" else "downloaded")
        )
        text = (
            f"{verb} {self.transferred} of {self.files_total} files "
            f"({format_size(self.bytes_transferred)}), skipped {self.skipped} already there"
        )
        if self.deleted or self.deletions_count:
            text += f", {'would delete' if self.dry_run else 'deleted'} {self.deletions_count}"
        if not self.dry_run:
            seconds = max(self.seconds, 1e-9)
            text += (
                f" in {self.seconds:.1f} s ({self.transferred / seconds:.0f} files/s, "
                f"{format_size(self.bytes_transferred / seconds if self.seconds > 0 else 0)}/s)"
            )
        return text


def note_partial(exc: RectrainError, result: TransferResult, verb: str, total: int) -> RectrainError:
    """The same error, saying what was finished and that a rerun resumes."""
    note = (
        f" ({result.transferred} of {total} files finished before the failure; "
        f"rerun the same {verb} to resume: finished files are skipped)"
    )
    exc.message = exc.message.rstrip(".") + note + "."
    exc.args = (str(exc),)
    return exc
