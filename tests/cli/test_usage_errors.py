"""Usage errors (exit 2) are one line, as every failure: Click's message, the command's
usage and where its help is; a group given alone still shows its help."""

from __future__ import annotations

import pytest

from edgekit.cli import main


@pytest.mark.parametrize(("args", "line"), [
    (["run", "x.edgekit"], "edgekit: usage error: Missing option '--source'; usage: edgekit run [OPTIONS] BUNDLE "
                           "(see edgekit run --help)"),
    (["inspect", "--bogus"], "edgekit: usage error: No such option '--bogus'; usage: edgekit inspect [OPTIONS] PATH "
                             "(see edgekit inspect --help)"),
    (["no-such-command"], "edgekit: usage error: No such command 'no-such-command'; usage: edgekit [OPTIONS] COMMAND "
                          "[ARGS]... (see edgekit --help)"),
    (["bench", "x", "--mode", "zzz"], "edgekit: usage error: Invalid value for '--mode': 'zzz' is not one of 'both', "
                                      "'invoke', 'e2e'; usage: edgekit bench [OPTIONS] TARGETS... (see edgekit bench --help)"),
    (["run", "x.edgekit", "--source"], "edgekit: usage error: Option '--source' requires an argument; see edgekit --help"),
])
def test_usage_errors_are_one_line(capsys, args, line):
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == line + "\n"


def test_a_group_alone_shows_its_help(capsys):
    assert main(["devices"]) in (0, 2)  # Click 8.2+ exits 2 after the help, older versions 0
    out, err = capsys.readouterr()
    assert "Usage: edgekit devices [OPTIONS] COMMAND [ARGS]..." in out + err and "list" in out + err
