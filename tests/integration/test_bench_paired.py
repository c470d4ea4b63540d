"""``bench.paired``: the code at a revision against the working tree's, at once, per core."""

from __future__ import annotations

import re

import pytest

from bench import paired


@pytest.mark.parametrize("op", ["heartbeat", "patch", "http-register"])
def test_a_paired_run_prints_each_round_and_the_pairs(
    op: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paired.main(["--base", "HEAD", "--op", op, "--rounds", "2", "--writes", "10"])
    lines = capsys.readouterr().out.splitlines()
    round_line = re.compile(
        r"round (\d): base [\d,]+ µs \(core (\d)\), "
        r"new [\d,]+ µs \(core (\d)\), new / base ([\d.]+)"
    )
    rounds = [round_line.fullmatch(line) for line in lines[:2]]
    assert all(rounds), lines
    assert [(m[1], m[2], m[3]) for m in rounds if m] == [("1", "0", "1"), ("2", "1", "0")]
    assert re.fullmatch(r"pairs of rounds \(geometric means\): [\d.]+; median [\d.]+", lines[2])
