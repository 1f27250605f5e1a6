"""A code starting with 0 names no registering authority (review of issue 18)."""

from uscc import is_valid_uscc, valid_uscc_mask


def test_zero_is_no_registering_authority():
    """GB 32100-2015 codes the authorities 1–9, A, N, Y; a code starting with 0 is refused
    (review of issue 18), by the per-code rule and the mask alike."""
    from stdnum.cn import uscc as stdnum_uscc

    stem = "01320102MA1000001"
    zero = stem + stdnum_uscc.calc_check_digit(stem)
    assert not is_valid_uscc(zero)
    assert not valid_uscc_mask([zero])[0]
