"""USCC (GB 32100-2015) validation for the scheduler's input boundary."""

from __future__ import annotations

from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def is_valid_uscc(code: str) -> bool:
    """True if ``code`` is an 18-character USCC with a correct check character.

    ``stdnum.cn.uscc.validate`` demands digits in positions 1–8 and so rejects valid codes of
    registering authorities ``A``, ``N``, ``Y`` (and any letter in position 2); for those we
    check the alphabet and use stdnum's own check-character computation.
    """
    if not isinstance(code, str) or len(code) != 18:
        return False
    try:
        _uscc.validate(code)
        return True
    except ValidationError:
        pass
    if code[:8].isdigit() or any(c not in _ALPHABET for c in code):
        return False
    return _uscc.calc_check_digit(code[:17]) == code[17]
