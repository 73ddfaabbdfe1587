"""Checks of recipe values: the one-line problems a bad field gives (recipe.py's Augment and Recipe use them)."""
from __future__ import annotations

import math


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def whole(v):
    """v as an int when it is a whole number (2 or 2.0), else None."""
    return int(v) if is_number(v) and math.isfinite(v) and float(v).is_integer() else None


def pair(v, ok) -> bool:
    return isinstance(v, (tuple, list)) and len(v) == 2 and all(ok(x) for x in v)


def shown(v) -> str:
    """A value as errors show it: a tuple as the comma-separated form --set takes."""
    if isinstance(v, (tuple, list)):
        return ",".join(shown(x) for x in v)
    return repr(v) if isinstance(v, str) else str(v)


def check_whole(problems, obj, name, low, high=None):
    """Append an error unless obj.name is a whole number in [low, high]; store it as an int."""
    v, w = getattr(obj, name), whole(getattr(obj, name))
    if w is None or w < low or (high is not None and w > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        problems.append(f"{name} must be a whole number {allowed}, got {shown(v)}")
    else:
        object.__setattr__(obj, name, w)


def check_number(problems, obj, name, low, high, low_open=False, high_open=False, unit="", prefix=""):
    """Append an error unless obj.name is a finite number in the range (NaN and inf never are);
    store it as a float."""
    v = getattr(obj, name)
    ok = (is_number(v) and math.isfinite(v) and (v > low if low_open else v >= low)
          and (high is None or (v < high if high_open else v <= high)))
    if not ok:
        if high is None:
            allowed = f"a finite number {'>' if low_open else '>='} {low}"
        else:
            allowed = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        problems.append(f"{prefix}{name} must be {allowed}{unit}, got {shown(v)}")
    else:
        object.__setattr__(obj, name, float(v))
