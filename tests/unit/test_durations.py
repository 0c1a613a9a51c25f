import pytest

from infra.durations import human_duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0, "0.0 s"),
        (4.25, "4.2 s"),
        (45.9, "45 s"),
        (200, "3 min 20 s"),
        (7_500, "2 h 5 min"),
        (3 * 86_400 + 4 * 3_600 + 59, "3 d 4 h"),
    ],
)
def test_a_duration_reads_in_the_two_largest_units(seconds: float | None, shown: str) -> None:
    assert human_duration(seconds) == shown
