"""A SIGKILL of `serve` (an OOM kill) ends its workers and Redis; a restart on the same port
and data folder counts every acknowledged event exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
import redis

from evaluation.child import free_port
from service.embedded import EmbeddedRedis, EmbeddedRedisError
from tests.chaos.feedback import (
    DROPPED,
    Answers,
    add_items,
    clients,
    expected_counts,
    feedback_events,
    in_batches,
    resend_reports_duplicates,
    send_lane,
    served_counts,
)
from tests.chaos.processes import (
    alive,
    command_line,
    descendants,
    port_is_free,
    settle,
    start_time,
)

pytestmark = pytest.mark.slow

LANES = 3


def _parent(child_code: str, *, linger: bool) -> subprocess.Popen[str]:
    """Start a process that starts `child_code` (its own pid in sys.argv[1]), prints the
    child's pid, then lingers or ends."""
    program = (
        "import os, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}, str(os.getpid())], "
        "stdout=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
    ) + ("time.sleep(600)\n" if linger else "")
    return subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)


def _child_of(parent: subprocess.Popen[str]) -> int:
    assert parent.stdout is not None
    return int(parent.stdout.readline())


def test_a_child_ends_when_its_parent_is_killed(tmp_path):
    armed = tmp_path / "armed"
    parent = _parent(
        "import pathlib, sys, time\n"
        "from service.lifetime import end_with_parent\n"
        "end_with_parent(int(sys.argv[1]))\n"
        f"pathlib.Path({str(armed)!r}).touch()\n"
        "time.sleep(600)\n",
        linger=True,
    )
    child = _child_of(parent)
    started = start_time(child)
    try:
        settle(armed.exists, "the child asked for its parent's death signal")
        parent.kill()
        settle(lambda: not alive(child, started), "the child ends with its parent")
    finally:
        parent.kill()
        parent.communicate()
        if alive(child, started):
            os.kill(child, signal.SIGKILL)


def test_a_child_whose_parent_died_before_it_asked_exits_at_once(tmp_path):
    orphaned, survived = tmp_path / "orphaned", tmp_path / "survived"
    parent = _parent(
        "import os, pathlib, sys, time\n"
        "parent = int(sys.argv[1])\n"
        "while os.getppid() == parent:\n"
        "    time.sleep(0.01)\n"
        f"pathlib.Path({str(orphaned)!r}).touch()\n"
        "from service.lifetime import end_with_parent\n"
        "end_with_parent(parent)\n"
        f"pathlib.Path({str(survived)!r}).touch()\n",
        linger=False,
    )
    child = _child_of(parent)
    started = start_time(child)
    parent.communicate()
    settle(orphaned.exists, "the child sees its parent gone")
    settle(lambda: not alive(child, started), "the orphaned child exits")
    assert not survived.exists()


def test_a_killed_serves_redis_holds_the_data_folder_until_it_has_exited(tmp_path):
    data_dir = tmp_path / "data"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, redis, time\n"
            "from service.embedded import EmbeddedRedis\n"
            f"server = EmbeddedRedis(pathlib.Path({str(data_dir)!r})).start()\n"
            "redis.Redis.from_url(server.url).set('acknowledged', '1')\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None and owner.stdout.readline() == "ready\n"
    (redis_pid, started), *others = descendants(owner.pid).items()
    assert not others and "redis-server" in command_line(redis_pid)
    # Stopped, the old server cannot act on the SIGTERM its parent's death sends it yet.
    os.kill(redis_pid, signal.SIGSTOP)
    owner.kill()
    owner.wait()
    owner.stdout.close()  # the server shares it: communicate() would wait for the server
    second = EmbeddedRedis(data_dir)
    try:
        with pytest.raises(EmbeddedRedisError, match="in use"):
            second.start()
    finally:
        second.stop()
        os.kill(redis_pid, signal.SIGCONT)
    settle(lambda: not alive(redis_pid, started), "the old server exits")
    # Its exit removed its socket file, not the new server's; the AOF kept the write.
    with EmbeddedRedis(data_dir) as server, redis.Redis.from_url(server.url) as client:
        assert client.get("acknowledged") == b"1"


def test_serve_killed_under_load_ends_its_processes_and_restarts_on_its_port_and_folder(
    start_serve,
):
    port = free_port()
    serve = start_serve(port=port, workers=2)
    tree = serve.tree()
    commands = [command_line(pid) for pid in tree]
    assert sum("redis-server" in line for line in commands) == 1, commands
    assert sum("multiprocessing.spawn" in line for line in commands) == 2, commands
    events = feedback_events(1200, seed=15, prefix="oom")
    batches = in_batches(events, 20)
    answers = Answers()
    restarted = threading.Event()

    def survivors() -> list[str]:
        return [command_line(pid) for pid, started in tree.items() if alive(pid, started)]

    with serve.client() as http:
        add_items(http)
    with clients(answers, LANES) as pool:
        senders = [
            pool.submit(send_lane, serve.base_url, batches[n::LANES], answers, restarted)
            for n in range(LANES)
        ]
        try:
            answers.wait_for(lambda a: a.acknowledged >= 15, "15 batches acknowledged")
            serve.kill()
            settle(lambda: not survivors(), lambda: f"these outlive serve: {survivors()}")
            assert port_is_free(port)
            restart = start_serve(port=port, workers=2)
        finally:
            restarted.set()
        for sender in senders:
            sender.result()

    assert answers.server_errors() == {}, answers.statuses
    assert set(answers.statuses) <= {200, 503, DROPPED}, answers.statuses
    assert answers.first_send_duplicates == 0
    with restart.client() as http:
        assert served_counts(http) == expected_counts(events)
        resend_reports_duplicates(http, batches)
    assert restart.stop() == 0
