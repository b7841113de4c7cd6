"""Fixed sets of choices: `str` Enums whose members carry one line of help.

A member is declared as ``NAME = "value", "help"``; ``member.value`` is the string users
type and ``member.help`` what ``--help`` says about it. The command line builds its options
from these (and from the plugin registries), so the names have one owner."""

from __future__ import annotations

import enum


class Choice(str, enum.Enum):
    """Base of the choice enums (no members of its own)."""

    help: str

    def __new__(cls, value: str, help: str = "") -> Choice:  # noqa: A002 - the option's help
        member = str.__new__(cls, value)
        member._value_ = value
        member.help = help
        return member
