"""What an import did: counts per type imported and skipped (with reasons), and the Profiles it made."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportReport:
    imported: Counter = field(default_factory=Counter)
    skipped: dict[str, Counter] = field(default_factory=dict)
    #: Profiles made by this import (objectIds), in order.
    profiles: list[str] = field(default_factory=list)

    def add(self, resource_type: str) -> None:
        self.imported[resource_type] += 1

    def skip(self, resource_type: str, reason: str) -> None:
        self.skipped.setdefault(resource_type, Counter())[reason] += 1

    def update(self, other: ImportReport) -> None:
        self.imported.update(other.imported)
        for rt, reasons in other.skipped.items():
            self.skipped.setdefault(rt, Counter()).update(reasons)
        self.profiles.extend(other.profiles)

    def as_json(self) -> dict[str, Any]:
        return {
            "imported": dict(sorted(self.imported.items())),
            "skipped": {rt: dict(reasons.most_common()) for rt, reasons in sorted(self.skipped.items())},
            "profiles": list(self.profiles),
        }

    def lines(self) -> list[str]:
        """The human-readable counts: one line per type imported, one per type and reason skipped."""
        out = [f"  imported  {rt:<24} {n:>6}" for rt, n in sorted(self.imported.items())]
        for rt, reasons in sorted(self.skipped.items()):
            out += [f"  skipped   {rt:<24} {n:>6}  {reason}" for reason, n in reasons.most_common()]
        return out or ["  (nothing)"]
