"""The Unified Social Credit Code (GB 32100-2015), checked against DOMAIN.md section 4.

The check is re-implemented here from the standard's description (weights ``3**i mod 31``, check
``alphabet[(31 - s mod 31) mod 31]``) so that the package is compared with an independent
reading, not with itself.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.geography.uscc import (
    ALPHABET,
    UsccStatus,
    classify_uscc,
    normalise_uscc,
    uscc_check_character,
)

SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 symbols: no I, O, S, V, Z
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
VALID = "91110000600037341L"
PILOT = "91350100M0001TGQXM"


def reference_check(first17: str) -> str:
    total = 0
    for i, ch in enumerate(first17):
        total += SYMBOLS.index(ch) * WEIGHTS[i]
    return SYMBOLS[(31 - total % 31) % 31]


def test_the_alphabet_and_weights_are_the_standards() -> None:
    assert ALPHABET == SYMBOLS
    assert len(SYMBOLS) == 31
    assert not set("IOSVZ") & set(SYMBOLS)
    assert [pow(3, i, 31) for i in range(17)] == WEIGHTS


def test_the_documented_example_is_valid() -> None:
    assert reference_check(VALID[:17]) == "L"
    assert uscc_check_character(VALID[:17]) == "L"
    assert classify_uscc(VALID) is UsccStatus.VALID


def test_a_pilot_code_is_pilot_only_in_a_pilot_division() -> None:
    assert reference_check(PILOT[:17]) != PILOT[17]  # it really fails its check
    assert classify_uscc(PILOT) is UsccStatus.INVALID
    assert classify_uscc(PILOT, ["350100"]) is UsccStatus.PILOT
    assert classify_uscc(PILOT, ["35"]) is UsccStatus.PILOT  # a province-level prefix
    assert classify_uscc(PILOT, ["110000"]) is UsccStatus.INVALID
    # A failing code in a non-pilot division stays invalid even when pilots are configured.
    assert classify_uscc("91110000600037341A", ["350100"]) is UsccStatus.INVALID


@pytest.mark.parametrize(
    "typed",
    [
        "91110000600037341l",
        " 91110000600037341L ",
        "9111 0000 6000 3734 1L",
        "911100-006000-37341l",
    ],
)
def test_lower_case_spaces_and_hyphens_are_normalised(typed: str) -> None:
    assert normalise_uscc(typed) == VALID
    assert classify_uscc(typed) is UsccStatus.VALID


@pytest.mark.parametrize("absent", [None, "", "   "])
def test_no_code_is_absent(absent: str | None) -> None:
    assert classify_uscc(absent) is UsccStatus.ABSENT


@pytest.mark.parametrize(
    "code",
    [
        "91110000600037341",  # 17 characters
        "91110000600037341LL",  # 19
        "9111000060003734OL",  # O is not a symbol
        "91AB0000600037341L",  # the division must be six digits
        "HK12345678",
    ],
)
def test_malformed_codes_are_invalid(code: str) -> None:
    assert classify_uscc(code, ["350100"]) is UsccStatus.INVALID


def test_a_code_from_authority_y_is_valid() -> None:
    # Authority `Y` ("other"), category 1, division 110000 (Beijing), organisation code MA01B2C3D.
    first17 = "Y1110000MA01B2C3D"
    code = first17 + reference_check(first17)
    assert uscc_check_character(first17) == code[17]
    assert classify_uscc(code) is UsccStatus.VALID
    assert classify_uscc(code.lower()) is UsccStatus.VALID


@st.composite
def valid_codes(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from("159Y")) + draw(st.sampled_from(SYMBOLS))
    division = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=6, max_size=6)))
    org = "".join(draw(st.lists(st.sampled_from(SYMBOLS), min_size=9, max_size=9)))
    first17 = head + division + org
    return first17 + reference_check(first17)


@settings(derandomize=True, database=None, max_examples=300)
@given(code=valid_codes())
def test_generated_codes_are_valid(code: str) -> None:
    assert classify_uscc(code) is UsccStatus.VALID


@settings(derandomize=True, database=None, max_examples=500)
@given(code=valid_codes(), position=st.integers(0, 17), data=st.data())
def test_changing_any_single_character_makes_a_code_not_valid(
    code: str, position: int, data: st.DataObject
) -> None:
    others = [c for c in SYMBOLS + "IOSVZ*" if c != code[position]]
    replacement = data.draw(st.sampled_from(others))
    changed = code[:position] + replacement + code[position + 1 :]
    assert classify_uscc(changed) is not UsccStatus.VALID
    # Not even when every division is a pilot one: a pilot code is never "valid".
    assert (
        classify_uscc(changed, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
        is not UsccStatus.VALID
    )
