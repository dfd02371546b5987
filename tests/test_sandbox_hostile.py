"""Hostile programs: each gets a failing verdict, and the harness, the machine
and the files outside the program's working directory come out unharmed."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from harness.execution import CallJob, Sandbox, SandboxSettings, ScriptJob, codec, encode_inputs, isolation_mode

ROOT = Path(__file__).resolve().parents[1]
MARK = "31337"  # children run `sleep 31337` so that leftovers can be found


def leftovers(uids: Sequence[int] = ()) -> list[int]:
    """Processes a hostile program left behind (its `sleep` children, or any process of the sandbox's uids)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{name}/stat").read_text()
            uid = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] == "Z":
            continue
        if MARK.encode() in cmdline or uid in uids:
            found.append(int(name))
    return found


@pytest.fixture(scope="module")
def hostile_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxSettings(workers=2, memory_bytes=512 << 20, file_size_bytes=8 << 20)) as sb:
        yield sb


@pytest.fixture()
def sentinel(tmp_path: Path) -> Path:
    """A folder outside any working directory whose content must not change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    folder.chmod(0o777)  # even a world-writable folder must stay untouched
    return folder


def call(sb: Sandbox, code: str, expected: list[object], limit: float = 0.5) -> str:
    inputs = [(i,) for i in range(len(expected))]
    job = CallJob(
        code=textwrap.dedent(code),
        entry_point="f",
        inputs_key=f"hostile-{len(expected)}",
        inputs_payload=lambda: encode_inputs(inputs),
        limits=[limit] * len(expected),
        costs=[0.01] * len(expected),
        budget=5.0,
        exec_limit=2.0,
        check=lambda i, payload: codec.decode(payload) == expected[i],
    )
    return sb.run_calls([job])[0].status


def script(sb: Sandbox, code: str, cpu: float = 1.0) -> str:
    return sb.run_scripts([ScriptJob(textwrap.dedent(code), cpu_limit=cpu)])[0].status


def assert_unharmed(sb: Sandbox, sentinel: Path) -> None:
    assert call(sb, "def f(x):\n    return x + 1\n", [1, 2, 3]) == "pass"
    assert leftovers(sb.program_uids()) == []
    assert sorted(p.name for p in sentinel.iterdir()) == ["keep.txt"]
    assert (sentinel / "keep.txt").read_text() == "precious"
    assert not (ROOT / "escaped.txt").exists()


HOSTILE_FUNCTIONS = {
    "infinite loop": "def f(x):\n    while True:\n        pass\n",
    "re-arms and ignores alarms": """
        import signal
        def f(x):
            for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGVTALRM, signal.SIGXCPU):
                signal.signal(s, signal.SIG_IGN)
            signal.setitimer(signal.ITIMER_REAL, 100)
            while True:
                pass
    """,
    "memory bomb": """
        def f(x):
            hog = []
            while True:
                hog.append(bytearray(64 << 20))
    """,
    "sys.exit": "import sys\ndef f(x):\n    sys.exit(0)\n",
    "os._exit": "import os\ndef f(x):\n    os._exit(0)\n",
    "kills its parent": """
        import ctypes, os, signal
        libc = ctypes.CDLL(None)
        def f(x):
            libc.kill(os.getppid(), signal.SIGKILL)
            libc.kill(1, signal.SIGKILL)
            libc.kill(-1, signal.SIGKILL)  # every process of its own uid, itself aside
            return x + 100
    """,
    "closes inherited descriptors": """
        import ctypes
        libc = ctypes.CDLL(None)
        def f(x):
            for fd in range(0, 1024):
                libc.close(fd)
            return x + 100
    """,
    "gigabytes of output": """
        import ctypes
        libc = ctypes.CDLL(None)
        def f(x):
            chunk = b"x" * (1 << 20)
            while True:
                print("y" * 100000)
                libc.write(1, chunk, len(chunk))
    """,
    "deep recursion": """
        import sys
        sys.setrecursionlimit(10**8)
        def f(x):
            return f(x + 1) + 1
    """,
    "always-equal result": """
        class Cheat(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def f(x):
            return Cheat(-1)
    """,
    "result with a hostile __reduce__": """
        class Bomb:
            def __reduce__(self):
                return (exec, ("import os; os.system('touch /tmp/owned')",))
        def f(x):
            return Bomb()
    """,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FUNCTIONS))
def test_hostile_function_fails_and_harms_nothing(hostile_sandbox: Sandbox, sentinel: Path, name: str) -> None:
    status = call(hostile_sandbox, HOSTILE_FUNCTIONS[name], [0, 1, 2])
    assert status in ("fail", "timeout"), name
    assert_unharmed(hostile_sandbox, sentinel)
    assert not Path("/tmp/owned").exists()


def test_children_that_outlive_the_program_are_killed(hostile_sandbox: Sandbox, sentinel: Path) -> None:
    status = script(
        hostile_sandbox,
        f"""
        import os
        for _ in range(3):
            if os.fork() == 0:
                os.setsid()              # leave the program's process group
                if os.fork() == 0:       # and its parent: a daemon
                    os.execv("/bin/sleep", ["sleep", "{MARK}"])
                os._exit(0)
        raise SystemExit(1)
        """,
    )
    assert status == "fail"
    assert_unharmed(hostile_sandbox, sentinel)


def test_fork_bomb_is_contained(hostile_sandbox: Sandbox, sentinel: Path) -> None:
    status = script(
        hostile_sandbox,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
    )
    assert status in ("fail", "timeout")
    assert_unharmed(hostile_sandbox, sentinel)


def test_files_outside_the_working_directory_stay_as_they_were(hostile_sandbox: Sandbox, sentinel: Path) -> None:
    if isolation_mode() != "bwrap":
        pytest.skip("filesystem isolation needs bubblewrap (process isolation is documented as weaker)")
    status = script(
        hostile_sandbox,
        f"""
        import os, shutil
        errors = 0
        for action in (
            lambda: open({str(ROOT / "escaped.txt")!r}, "w").write("x"),
            lambda: os.remove({str(sentinel / "keep.txt")!r}),
            lambda: open({str(sentinel / "new.txt")!r}, "w").write("x"),
            lambda: shutil.rmtree({str(sentinel)!r}),
            lambda: open("/etc/harness-escape", "w").write("x"),
        ):
            try:
                action()
            except OSError:
                errors += 1
        open("inside.txt", "w").write("the working directory is writable")
        assert errors == 5, errors
        """,
    )
    assert status == "pass"  # every attempt outside failed; writing inside worked
    assert_unharmed(hostile_sandbox, sentinel)
    assert not Path("/etc/harness-escape").exists()


def test_no_network(hostile_sandbox: Sandbox) -> None:
    if isolation_mode() != "bwrap":
        pytest.skip("network isolation needs bubblewrap")
    status = script(
        hostile_sandbox,
        """
        import socket
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", 22))
        except OSError:
            raise SystemExit(0)
        raise SystemExit(1)
        """,
    )
    assert status == "pass"


def test_sleeping_program_hits_the_wall_clock_limit(hostile_sandbox: Sandbox) -> None:
    assert script(hostile_sandbox, "import time\ntime.sleep(60)\n", cpu=0.2) == "timeout"


def test_output_capture_is_capped(hostile_sandbox: Sandbox) -> None:
    result = hostile_sandbox.run_scripts([ScriptJob("for _ in range(2000):\n    print('z' * 1000)\n", cpu_limit=5)])[0]
    assert result.status == "pass"
    assert 0 < len(result.stdout) <= 64 << 10


def test_a_dead_worker_is_replaced(sentinel: Path) -> None:
    with Sandbox(SandboxSettings(workers=1)) as sb:
        sb.run_scripts([ScriptJob("pass")])
        worker = sb._workers[0]
        worker.proc.kill()
        assert call(sb, "def f(x):\n    return x + 1\n", [1]) in ("pass", "fail")
        assert call(sb, "def f(x):\n    return x + 1\n", [1]) == "pass"


@pytest.mark.skipif(os.geteuid() != 0, reason="programs get uids of their own only when the harness runs as root")
def test_two_sandboxes_never_share_program_uids(sentinel: Path) -> None:
    # Two evaluations at once on one machine: each worker's sweep kills every process of its uid, so
    # a shared uid would let one run kill the other's programs.
    with Sandbox(SandboxSettings(workers=2)) as a, Sandbox(SandboxSettings(workers=2)) as b:
        a.run_scripts([ScriptJob("pass")] * 2)
        b.run_scripts([ScriptJob("pass")] * 2)
        assert len(set(a.program_uids()) | set(b.program_uids())) == 4
        job = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n    pass\n"
        results = []
        import threading

        th = threading.Thread(target=lambda: results.extend(a.run_scripts([ScriptJob(job, cpu_limit=5)] * 4)))
        th.start()
        assert [r.status for r in b.run_scripts([ScriptJob(job, cpu_limit=5)] * 4)] == ["pass"] * 4
        th.join()
        assert [r.status for r in results] == ["pass"] * 4


def test_released_inputs_are_forgotten_and_resent_when_needed(hostile_sandbox: Sandbox) -> None:
    payload = encode_inputs([[1], [2]])
    job = lambda: CallJob(code="def f(x):\n    return x\n", entry_point="f", inputs_key="release-test",  # noqa: E731
                          inputs_payload=lambda: payload, limits=[1.0, 1.0], costs=[0.01, 0.01],
                          check=lambda i, out: codec.decode(out) == [1, 2][i], release_inputs=True)  # fmt: skip
    assert [r.status for r in hostile_sandbox.run_calls([job(), job()])] == ["pass", "pass"]
    assert all("release-test" not in w.known_inputs for w in hostile_sandbox._workers)
    assert hostile_sandbox.run_calls([job()])[0].status == "pass"  # sent again


def test_script_cpu_time_is_reported_in_full(hostile_sandbox: Sandbox) -> None:
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass\n"
    (result,) = hostile_sandbox.run_scripts([ScriptJob(busy, cpu_limit=5)])
    assert result.status == "pass" and result.cpu >= 0.3


POSIX_FORK_BOMB = """
import posix  # the guard disables os.fork; posix.fork is the same call by another name
def f(x):
    for _ in range(12):
        try:
            if posix.fork() == 0:
                while True:
                    pass
        except OSError:
            break
    while True:
        pass
"""

# Every child stays far under the per-input limit on its own; together they spin for much longer.
SPREAD_BOMB = """
import posix, time
def f(x):
    for _ in range(40):
        try:
            pid = posix.fork()
        except OSError:
            break
        if pid == 0:
            t = time.process_time()
            while time.process_time() - t < 0.2:
                pass
            posix._exit(0)
    time.sleep(30)
"""


@pytest.mark.parametrize("code", [POSIX_FORK_BOMB, SPREAD_BOMB], ids=["posix_fork_bomb", "spread_bomb"])
def test_cpu_of_a_programs_children_counts(hostile_sandbox: Sandbox, sentinel: Path, code: str) -> None:
    import time

    t0 = time.monotonic()
    # A call with a 0.5 s per-input limit: the children's CPU counts against it, so the program is
    # stopped at about that much CPU, not after the wall-clock safety limit (3 x limit + 1 s).
    assert call(hostile_sandbox, code, [0], limit=0.5) in ("fail", "timeout")
    assert time.monotonic() - t0 < 0.5 + 1.5  # the limit, plus the poll and the sweep
    t0 = time.monotonic()
    status = script(hostile_sandbox, code.replace("def f(x):", "def f(x=0):") + "\nf()\n", cpu=1.0)
    assert status == "timeout"
    assert time.monotonic() - t0 < 1.0 + 1.5
    assert_unharmed(hostile_sandbox, sentinel)
