"""The five crontab fields: parsing Celery's syntax into sets, and writing sets back as text.

Syntax (Celery's, in each field): ``*``, ``N``, ``a-b``, ``*/s``, ``a-b/s`` and comma lists of
these; a range whose end is below its start wraps around (hour ``22-2`` is 22, 23, 0, 1, 2);
names ``sun``..``sat`` in day_of_week and ``jan``..``dec`` in month_of_year, in any case, as
abbreviations or in full. Celery also takes an int or a set (any iterable) of ints; so do we.
Everything else is a ValueError whose sentence names the field and the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_FULL_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_FULL_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")


@dataclass(frozen=True)
class Field:
    """One crontab field: its name, its range, and the names it accepts for numbers."""

    name: str
    low: int
    high: int
    #: name -> number (lower case), e.g. "mon" -> 1; empty where the field has no names.
    names: Mapping[str, int]
    #: how numbers are written back (a name per number), if the field has names.
    spelled: tuple[str, ...] = ()
    #: said after the range in an out-of-range error.
    note: str = ""

    @property
    def all(self) -> frozenset[int]:
        return frozenset(range(self.low, self.high + 1))

    def parse(self, spec: object) -> frozenset[int]:
        """The set of numbers `spec` (a str, an int or an iterable of ints) selects."""
        if spec is None:
            return self.all
        if isinstance(spec, bool):
            raise TypeError(f"crontab {self.name} is a string, an int or a set of ints, "
                            f"not a bool ({spec!r})")
        if isinstance(spec, int):
            return frozenset([self._check(spec, repr(str(spec)))])
        if isinstance(spec, str):
            return self._parse_text(spec)
        if isinstance(spec, Iterable):
            values = list(spec)
            shown = repr(spec)
            for value in values:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"crontab {self.name} {shown} holds {value!r}: a set for a "
                                    f"crontab field holds ints only")
            if not values:
                raise ValueError(f"crontab {self.name} {shown} is empty: the entry would never "
                                 f"run; use '*' for every {self._unit}")
            return frozenset(self._check(value, shown) for value in values)
        raise TypeError(f"crontab {self.name} is a string, an int or a set of ints, "
                        f"not {type(spec).__name__}")

    @property
    def _unit(self) -> str:
        return {"minute": "minute", "hour": "hour", "day_of_week": "day",
                "day_of_month": "day", "month_of_year": "month"}[self.name]

    def _check(self, value: int, shown: str) -> int:
        if not self.low <= value <= self.high:
            where = "" if shown == repr(str(value)) else f": {value}"
            raise ValueError(f"crontab {self.name} {shown}{where} is out of range "
                             f"{self.low}-{self.high}{self.note}")
        return value

    def _parse_text(self, spec: str) -> frozenset[int]:
        text = spec.strip().lower()
        shown = repr(spec)
        if not text:
            raise ValueError(f"crontab {self.name} {shown} is empty: use '*' for every "
                             f"{self._unit}")
        found: set[int] = set()
        for part in text.split(","):
            found |= self._parse_part(part.strip(), shown)
        return frozenset(found)

    def _parse_part(self, part: str, shown: str) -> set[int]:
        if not part:
            raise ValueError(f"crontab {self.name} {shown} has an empty item between commas")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"crontab {self.name} {shown}: the step after '/' must be a "
                                 f"positive whole number, not {step_text!r}")
            step = int(step_text)
            if base != "*" and "-" not in base:
                raise ValueError(f"crontab {self.name} {shown}: a step needs '*' or a range "
                                 f"before it, e.g. '*/{step}' or '{base}-{self.high}/{step}'")
        if base == "*":
            return set(range(self.low, self.high + 1, step))
        if base.startswith("-"):
            raise ValueError(f"crontab {self.name} {shown}: negative numbers are not allowed "
                             f"(the range is {self.low}-{self.high})")
        first_text, dash, last_text = base.partition("-")
        first = self._number(first_text, shown)
        if not dash:
            return {first}
        last = self._number(last_text, shown)
        if last >= first:
            run = list(range(first, last + 1))
        else:  # wraps past the end of the range: hour 22-2 is 22, 23, 0, 1, 2
            run = list(range(first, self.high + 1)) + list(range(self.low, last + 1))
        return set(run[::step])

    def _number(self, text: str, shown: str) -> int:
        if text.isdigit():
            return self._check(int(text), shown)
        if text in self.names:
            return self.names[text]
        if not text:
            raise ValueError(f"crontab {self.name} {shown}: a range needs a number on both "
                             f"sides of '-'")
        kind = "a number"
        if self.spelled:
            kind += f" or a name ({self.spelled[0]}..{self.spelled[-1]})"
        raise ValueError(f"crontab {self.name} {shown}: {text!r} is not {kind}")

    def text(self, values: frozenset[int]) -> str:
        """`values` written back compactly: ``*``, ``*/15``, ``1-5``, ``mon-fri``, ``0,30``."""
        ordered = sorted(values)
        if values == self.all:
            return "*"
        if len(ordered) > 2:
            step = ordered[1] - ordered[0]
            if ordered[0] == self.low and values == frozenset(range(self.low, self.high + 1,
                                                                    step)):
                return f"*/{step}"
        parts, start = [], 0
        for i in range(1, len(ordered) + 1):
            if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
                first, last = ordered[start], ordered[i - 1]
                if last - first >= 2:
                    parts.append(f"{self._word(first)}-{self._word(last)}")
                else:
                    parts.extend(self._word(v) for v in range(first, last + 1))
                start = i
        return ",".join(parts)

    def _word(self, value: int) -> str:
        return self.spelled[value - self.low] if self.spelled else str(value)


def _names(short: tuple[str, ...], full: tuple[str, ...], first: int) -> dict[str, int]:
    table = {name: i + first for i, name in enumerate(short)}
    table.update({name: i + first for i, name in enumerate(full)})
    return table


MINUTE = Field("minute", 0, 59, {})
HOUR = Field("hour", 0, 23, {})
DAY_OF_WEEK = Field("day_of_week", 0, 6, _names(DAY_NAMES, _FULL_DAYS, 0), DAY_NAMES,
                    " (Sunday is 0; 7 is not accepted)")
DAY_OF_MONTH = Field("day_of_month", 1, 31, {})
MONTH_OF_YEAR = Field("month_of_year", 1, 12, _names(MONTH_NAMES, _FULL_MONTHS, 1), MONTH_NAMES)
