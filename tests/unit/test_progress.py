from __future__ import annotations

from modelferry.transfer.engine import every_tenth


def test_progress_is_reported_once_per_tenth_of_the_file() -> None:
    seen: list[int] = []
    progress = every_tenth(lambda done, total, percent: seen.append(percent))
    total = 2560 * 8  # a 20 GiB file in 8 MiB parts, scaled down
    for done in range(8, total + 1, 8):
        progress(done, total)
    assert seen == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def test_an_empty_file_reports_once() -> None:
    seen: list[int] = []
    progress = every_tenth(lambda done, total, percent: seen.append(percent))
    progress(0, 0)
    progress(0, 0)
    assert seen == [0]
