"""Serial sensor lines through a real pseudo-terminal (pyserial opens the pty like a USB serial port)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from edgekit.errors import InputError
from edgekit.runtime.sources import open_source
from tests.support.env import need_module


def test_serial_lines_json_and_csv_with_malformed_ones():
    need_module("serial", 'pip install "edgekit-ml[sensor]"')
    master, slave = os.openpty()
    path = os.ttyname(slave)
    source = open_source(f"serial:{path}?baud=115200")
    lines = ["ax,ay,az", "0.1,0.2,0.3", '{"ax": 1, "ay": 2, "az": 3}', "garbage,,", "0.4,0.5,0.6"]

    def feed() -> None:
        time.sleep(0.2)
        for line in lines:
            os.write(master, (line + "\r\n").encode())
            time.sleep(0.02)

    threading.Thread(target=feed, daemon=True).start()
    items = []
    for item in source:
        items.append(item.payload)
        if len(items) == 3:
            break
    source.close()
    os.close(master)
    os.close(slave)
    assert items[0] == {"ax": 0.1, "ay": 0.2, "az": 0.3}
    assert items[1] == {"ax": 1.0, "ay": 2.0, "az": 3.0}
    assert items[2] == {"ax": 0.4, "ay": 0.5, "az": 0.6}
    assert source.counters.malformed == 1


def test_missing_serial_port_is_one_clear_error():
    need_module("serial", 'pip install "edgekit-ml[sensor]"')
    with pytest.raises(InputError, match="dialout"):
        open_source("serial:/dev/ttyDOESNOTEXIST")
