"""The issue types `keras-birds clean` reports, and its findings as data: what audit produces and report reads.

Its own module so that audit (which writes the report) and report (which reads findings) share it
without importing each other.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# cleanvision's default checks, in the order reports list them.
CLEANVISION_TYPES = ("exact_duplicates", "near_duplicates", "odd_size", "odd_aspect_ratio", "blurry",
                     "dark", "light", "low_information", "grayscale")
OUR_TYPES = ("unreadable", "leakage", "label_conflict")
ISSUE_TYPES = OUR_TYPES + CLEANVISION_TYPES
# Types that exclude.txt lists only when asked (--exclude-also); the others are excluded by default.
OPTIONAL_EXCLUDES = ("near_duplicates",) + CLEANVISION_TYPES[2:]


@dataclass
class Finding:
    """One issue of one file. Scores follow cleanvision: lower is worse, in [0, 1]."""

    file: str  # absolute path
    split: str
    species: str
    issue: str
    score: float
    others: list = field(default_factory=list)  # the other files of its duplicate set / pair
    detail: str = ""


@dataclass
class AuditResult:
    data: str
    root: Path
    out: Path
    images: dict  # split -> number of files
    findings: list
    excluded: dict  # absolute path -> [reason, ...] in order of importance
    exclude_also: tuple
    timing: dict
    species_of: dict = field(default_factory=dict)  # absolute path -> (split, species)
    species_missing: dict = field(default_factory=dict)  # species -> [splits without any of its images]

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)
