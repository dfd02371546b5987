"""Command jobs (compiled and other-language programs) and the one scheduler for every job kind.

Hostile C programs go through a compile step and a run step; each must get a
failing, classified verdict and leave nothing behind: no process (of the
program uids, or under the workers), no file outside its working directory.
Each runs under this machine's default isolation (bubblewrap when it works)
and under ``process`` isolation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.evalplus_guard import EVALPLUS_GUARD_PRELUDE
from harness.execution import (
    CallJob,
    CommandJob,
    CommandResult,
    Sandbox,
    SandboxError,
    SandboxSettings,
    ScriptJob,
    ScriptResult,
    Step,
    codec,
    encode_inputs,
    isolation_mode,
)
from harness.execution import sandbox as sandbox_module

CC = shutil.which("gcc") or shutil.which("cc")
MARK = "hx31337"  # hostile C programs name themselves (comm) with this, so leftovers can be found
MEMORY = 512 << 20
ISOLATIONS = ["default", "process"]

needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (gcc or cc) on PATH")


def _settings(isolation: str, **kw: Any) -> SandboxSettings:
    """Two workers, a 512 MiB cap, 8 MiB files; ``default`` leaves the isolation to this machine."""
    base: dict[str, Any] = {"workers": 2, "memory_bytes": MEMORY, "file_size_bytes": 8 << 20}
    if isolation != "default":
        base["isolation"] = isolation
    return SandboxSettings(**{**base, **kw})


@pytest.fixture(scope="module", params=ISOLATIONS)
def sb(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with Sandbox(_settings(request.param)) as box:
        yield box


def _proc_table() -> dict[int, tuple[int, int, str, str, str]]:
    """pid -> (ppid, uid, state, comm, cmdline) of every process this machine shows."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            uid = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        head, tail = stat[: stat.rfind(")")], stat[stat.rfind(")") + 2 :].split()
        table[int(name)] = (int(tail[1]), uid, tail[0], head[head.find("(") + 1 :], cmdline)
    return table


def strays(box: Sandbox) -> list[str]:
    """Processes programs left: marked ones, any of the program uids, any child under a worker but the worker."""
    table = _proc_table()
    uids = set(box.program_uids())
    found = {p for p, (_, uid, state, comm, _) in table.items() if state != "Z" and (uid in uids or MARK in comm)}
    roots = {w.proc.pid for w in box._workers}
    for pid, (ppid, _, state, _, cmd) in table.items():
        q, hops = ppid, 0
        while q not in roots and q in table and hops < 64:
            q, hops = table[q][0], hops + 1
        if q not in roots or state == "Z":
            continue  # not under a worker
        parent_argv0 = os.path.basename(table.get(ppid, (0, 0, "", "", ""))[4].split(" ")[0])
        if os.path.basename(cmd.split(" ")[0]) == "bwrap":
            continue  # bubblewrap itself
        if "worker.py" in cmd and (ppid in roots or parent_argv0 == "bwrap"):
            continue  # the worker (a runner it forked has the worker as its parent)
        found.add(pid)
    return [f"{p} {table[p][3]} uid={table[p][1]}" for p in sorted(found) if p in table]


def c_job(source: str, *, cpu: float = 0.5, stdin: str = "", name: str = MARK, **limits: Any) -> CommandJob:
    """Compile ``source`` with the C compiler, then run it (the binary is named ``name``)."""
    compile_step = Step([str(CC), "-O1", "-o", name, "prog.c"], cpu_limit=20)
    run_step = Step([f"./{name}"], stdin=stdin, cpu_limit=cpu, **limits)
    return CommandJob(steps=[compile_step, run_step], files={"prog.c": source})


def run_one(box: Sandbox, job: CommandJob) -> CommandResult:
    (result,) = box.run([job])
    assert isinstance(result, CommandResult)
    return result


# --------------------------------------------------------------- hostile C programs
HOSTILE_C = {
    "infinite loop": ("int main(void) { volatile unsigned long x = 0; for (;;) x++; }", {"timeout"}),
    "fork bomb": (
        "#include <unistd.h>\nint main(void) { for (;;) fork(); }",
        {"timeout"},  # as root: 64 processes of its uid spin until the tree's CPU limit
    ),
    "memory bomb": (
        "#include <stdlib.h>\n#include <string.h>\n"
        "int main(void) { for (;;) { char *p = malloc(1 << 20); memset(p, 1, 1 << 20); } }",
        {"memory"},  # malloc fails at the cap, memset(NULL) faults: SIGSEGV at the address-space cap
    ),
    "memory bomb that checks malloc": (
        "#include <stdlib.h>\n#include <string.h>\n"
        "int main(void) { for (;;) { char *p = malloc(1 << 20); if (!p) return 3; memset(p, 1, 1 << 20); } }",
        {"memory"},
    ),
    "gigabytes of output": (
        '#include <stdio.h>\nint main(void) { for (;;) fputs("spam spam spam spam spam spam spam\\n", stdout); }',
        {"output_limit"},  # the file-size limit (8 MiB here) stops it with SIGXFSZ
    ),
    "sleeps forever": ("#include <unistd.h>\nint main(void) { for (;;) sleep(1); }", {"timeout"}),
    "kills everything it can": (
        "#include <signal.h>\n#include <unistd.h>\n"
        "int main(void) { kill(getppid(), SIGKILL); kill(1, SIGKILL); kill(-1, SIGKILL); return 1; }",
        {"exit", "signal"},  # kill(-1) may reach the program itself
    ),
}


@needs_cc
@pytest.mark.parametrize("name", sorted(HOSTILE_C))
def test_hostile_c_program_is_classified_and_leaves_nothing(sb: Sandbox, name: str) -> None:
    source, expected = HOSTILE_C[name]
    limits: dict[str, Any] = {"wall_limit": 1.0} if name == "sleeps forever" else {}
    if name.startswith("memory bomb"):
        limits = {"memory_bytes": 128 << 20, "cpu": 2.0}  # a cap of the step's own, reached well within its CPU
    result = run_one(sb, c_job(source, **limits))
    assert len(result.steps) == 2 and result.steps[0].status == "ok", result
    step = result.steps[1]
    assert result.status in ("fail", "timeout") and step.status in expected, (name, step)
    assert step.reason, step
    assert strays(sb) == []
    # The machine and the sandbox are fine: the next program runs normally.
    ok = run_one(sb, CommandJob([Step(["sh", "-c", "echo fine"])]))
    assert ok.status == "pass" and ok.steps[0].stdout == b"fine\n"


@needs_cc
def test_daemonised_child_is_killed(sb: Sandbox) -> None:
    source = f"""
        #include <sys/prctl.h>
        #include <unistd.h>
        int main(void) {{
            if (fork() == 0) {{
                setsid();
                if (fork() == 0) {{
                    prctl(PR_SET_NAME, "{MARK}d");
                    for (;;) sleep(1);
                }}
                _exit(0);
            }}
            usleep(50000);
            return 0;
        }}
    """
    result = run_one(sb, c_job(source))
    assert result.status == "pass", result  # the program itself exits cleanly
    assert strays(sb) == []


@needs_cc
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_files_outside_the_working_directory_are_refused_or_removed(isolation: str) -> None:
    if isolation == "process" and os.geteuid() != 0:
        pytest.skip("without root, process isolation runs programs as the harness's own user")
    tag = uuid.uuid4().hex[:8]
    targets = [f"/tmp/hx-{tag}", f"/dev/shm/hx-{tag}", f"/root/hx-{tag}", f"/etc/hx-{tag}", f"/tmp/hx-{tag}-dir/f"]
    write = (
        "#include <stdio.h>\n#include <sys/ipc.h>\n#include <sys/shm.h>\n#include <sys/stat.h>\n"
        "int main(void) {\n"
        "  if (shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0600) < 0) return 5;\n"  # outlives its creator
        f'  mkdir("/tmp/hx-{tag}-dir", 0777);\n'
        f"  const char *paths[] = {{{', '.join(f'{chr(34)}{t}{chr(34)}' for t in targets)}}};\n"
        '  for (int i = 0; i < 5; i++) { FILE *f = fopen(paths[i], "w");'
        ' printf("%s %s\\n", paths[i], f ? "written" : "refused"); if (f) fclose(f); }\n'
        f'  symlink("/etc/passwd", "/tmp/hx-{tag}-link");\n'
        "  return 0;\n}\n"
    )
    look = (
        f"ls -d /tmp/hx-{tag}* /dev/shm/hx-{tag}* 2>/dev/null; awk -v u=$(id -u) 'NR > 1 && $8 == u' /proc/sysvipc/shm"
    )
    with Sandbox(_settings(isolation, workers=1)) as box:  # one worker: the second job sees the first one's /tmp
        first = run_one(box, c_job(write))
        assert first.status == "pass", first
        said = dict(line.rsplit(" ", 1) for line in first.steps[1].stdout.decode().splitlines())
        assert said[f"/root/hx-{tag}"] == "refused" and said[f"/etc/hx-{tag}"] == "refused", said
        second = run_one(box, CommandJob([Step(["sh", "-c", look])]))
        assert second.status == "pass" and second.steps[0].stdout == b"", second.steps[0].stdout
        assert strays(box) == []
    for path in targets:
        assert not os.path.lexists(path), path
    assert not os.path.lexists(f"/tmp/hx-{tag}-link") and os.path.exists("/etc/passwd")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_python_programs_leave_no_temporary_files_either(isolation: str) -> None:
    tag = uuid.uuid4().hex[:8]
    write = f"""
import os
open("/tmp/hx-{tag}", "w").write("x")
open("/dev/shm/hx-{tag}", "w").write("x")
os.makedirs("/tmp/hx-{tag}-dir/sub")
os.symlink("/etc/passwd", "/tmp/hx-{tag}-link")
"""
    look = f"import glob\nassert glob.glob('/tmp/hx-{tag}*') + glob.glob('/dev/shm/hx-{tag}*') == []\n"
    with Sandbox(_settings(isolation, workers=1)) as box:
        if box.mode != "bwrap" and (os.geteuid() != 0 or sandbox_module._hidden_ancestor(sys.base_prefix)):
            # Python programs then keep the harness's uid: their files cannot be told from anyone else's.
            pytest.skip("process isolation without a program uid of their own for Python programs")
        assert [r.status for r in box.run_scripts([ScriptJob(write), ScriptJob(look)])] == ["pass", "pass"]
    assert not any(os.path.lexists(p) for p in (f"/tmp/hx-{tag}", f"/dev/shm/hx-{tag}", f"/tmp/hx-{tag}-link"))
    assert os.path.exists("/etc/passwd")


# ------------------------------------------------------------------ plain behaviour
@needs_cc
def test_compile_error_is_a_failed_compile_step(sb: Sandbox) -> None:
    result = run_one(sb, c_job("int main(void) { return undefined_name; }\n"))
    assert result.status == "fail" and len(result.steps) == 1
    step = result.steps[0]
    assert step.status == "exit" and step.exit_code not in (None, 0)
    assert b"undefined_name" in step.stderr and b"error" in step.stderr
    assert result.error is not None and "step 1" in result.error


@needs_cc
def test_program_reads_stdin_and_writes_stdout(sb: Sandbox) -> None:
    source = '#include <stdio.h>\nint main(void) { long a, b; scanf("%ld %ld", &a, &b); printf("%ld\\n", a + b); }'
    result = run_one(sb, c_job(source, stdin="40 2\n", name="adder"))
    assert result.status == "pass", result
    assert result.steps[1].stdout == b"42\n" and result.steps[1].exit_code == 0
    assert result.cpu >= result.steps[0].cpu > 0  # the compiler's children (cc1, as, ld) count


def test_stdout_capture_is_capped(sb: Sandbox) -> None:
    job = CommandJob([Step(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo oops >&2"], capture_bytes=1000)])
    result = run_one(sb, job)
    assert result.status == "pass", result
    assert result.steps[0].stdout == b"x" * 1000 and result.steps[0].stderr == b"oops\n"


def test_missing_binary_and_nonzero_exit(sb: Sandbox) -> None:
    missing, failing, later = sb.run(
        [
            CommandJob([Step(["no-such-compiler-hx"]), Step(["true"])]),
            CommandJob([Step(["sh", "-c", "exit 3"]), Step(["true"])]),
            CommandJob([Step(["sh", "-c", "exit 3"]), Step(["sh", "-c", "echo $HOME $LANG $X"])],
                       env={"X": "y"}, continue_on_failure=True),
        ]
    )  # fmt: skip
    assert isinstance(missing, CommandResult) and isinstance(failing, CommandResult)
    assert isinstance(later, CommandResult)
    assert missing.status == "fail" and [s.status for s in missing.steps] == ["error"]
    assert missing.steps[0].reason == "no-such-compiler-hx: not found"
    assert failing.status == "fail" and len(failing.steps) == 1
    assert (
        failing.steps[0].status == "exit"
        and failing.steps[0].exit_code == 3
        and failing.steps[0].reason == "exit code 3"
    )
    assert later.status == "fail" and [s.status for s in later.steps] == ["exit", "ok"]
    home, lang, x = later.steps[1].stdout.decode().split()
    assert lang == "C.UTF-8" and x == "y" and home.startswith("/")


def test_bad_file_paths_are_refused_before_running(sb: Sandbox) -> None:
    for path in ("../escape.txt", "/tmp/abs.txt", "a/../../b", ""):
        with pytest.raises(SandboxError):
            sb.run([CommandJob([Step(["true"])], files={path: "x"})])
    with pytest.raises(SandboxError):
        sb.run([CommandJob([Step([])])])


def test_files_land_in_the_working_directory(sb: Sandbox) -> None:
    job = CommandJob(
        [Step(["sh", "-c", "cat sub/dir/data.txt; ./run.sh"])],
        files={"sub/dir/data.txt": b"payload\n", "run.sh": "#!/bin/sh\necho script ran\n"},
    )
    result = run_one(sb, job)
    assert result.status == "pass", result
    assert result.steps[0].stdout == b"payload\nscript ran\n"


# ------------------------------------------------------------------ other languages
def _toolchain(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_cpp_program(sb: Sandbox) -> None:
    gxx = _toolchain("g++")
    source = "#include <iostream>\n#include <vector>\nint main() { int n; std::cin >> n; std::vector<long> v(n, 3);\n"
    source += "long s = 0; for (long x : v) s += x; std::cout << s << std::endl; }\n"
    job = CommandJob([Step([gxx, "-O2", "-o", "prog", "prog.cpp"], cpu_limit=30), Step(["./prog"], stdin="7\n")],
                     files={"prog.cpp": source})  # fmt: skip
    result = run_one(sb, job)
    assert result.status == "pass", result
    assert result.steps[1].stdout == b"21\n"


def test_javascript_program(sb: Sandbox) -> None:
    node = _toolchain("node")
    source = 'let d = ""; process.stdin.on("data", c => d += c); process.stdin.on("end", () => console.log(2 * d));'
    # V8 reserves its code range and heap cage up front (node 20 needs about 1 GiB of address space; under
    # 512 MiB it dies of "Fatal process OOM ... CodeRange"): no address-space cap, the heap bounded by V8 itself.
    step = Step([node, "--max-old-space-size=256", "prog.js"], stdin="21\n", cpu_limit=10, memory_bytes=0)
    result = run_one(sb, CommandJob([step], files={"prog.js": source}))
    assert result.status == "pass", result
    assert result.steps[0].stdout == b"42\n"


def test_java_program(sb: Sandbox) -> None:
    # The JVM reserves address space for its heap, code cache and class space up front: under a tight
    # RLIMIT_AS (1 GiB) it refuses to start unless those are sized down (-Xmx, -XX:ReservedCodeCacheSize,
    # -XX:CompressedClassSpaceSize, -XX:MaxMetaspaceSize).  So no address-space cap (memory_bytes=0) and the
    # heap bounded by -Xmx; the serial collector keeps its threads (RLIMIT_NPROC counts them) few.
    javac, java = _toolchain("javac"), _toolchain("java")
    source = "import java.util.*;\npublic class Main { public static void main(String[] a) {\n"
    source += "  Scanner s = new Scanner(System.in); System.out.println(s.nextInt() * 3); } }\n"
    jvm = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData"]
    job = CommandJob(
        [Step([javac, *(f"-J{f}" for f in jvm), "Main.java"], cpu_limit=60, memory_bytes=0),
         Step([java, *jvm, "-Xmx256m", "Main"], stdin="14\n", cpu_limit=20, memory_bytes=0)],
        files={"Main.java": source},
    )  # fmt: skip
    result = run_one(sb, job)
    assert result.status == "pass", result
    assert result.steps[1].stdout == b"42\n"


def test_rust_program(sb: Sandbox) -> None:
    _toolchain("rustc")
    # rustup's `rustc` is a proxy that needs ~/.rustup: run the toolchain's own binary.
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, check=True).stdout.strip()
    rustc = os.path.join(sysroot, "bin", "rustc")
    source = "use std::io::Read;\nfn main() { let mut s = String::new(); std::io::stdin().read_to_string(&mut s)"
    source += '.unwrap(); let n: i64 = s.trim().parse().unwrap(); println!("{}", n * 6); }\n'
    job = CommandJob([Step([rustc, "-O", "-o", "prog", "prog.rs"], cpu_limit=60), Step(["./prog"], stdin="7\n")],
                     files={"prog.rs": source})  # fmt: skip
    if sb.mode == "bwrap":
        # A toolchain under a home the program uid may not enter is bound back read-only.
        with Sandbox(SandboxSettings(workers=1, read_paths=(sysroot,))) as box:
            result = run_one(box, job)
    else:
        hidden = sandbox_module._hidden_ancestor(sysroot)
        if hidden is not None and os.geteuid() == 0:
            pytest.skip(f"process isolation: the program uid cannot enter {hidden} where rustc lives")
        result = run_one(sb, job)
    assert result.status == "pass", result
    assert result.steps[1].stdout == b"42\n"


# ------------------------------------------------------------------ one scheduler
def test_run_scripts_streams_results(sb: Sandbox) -> None:
    seen: dict[int, float] = {}
    t0 = time.monotonic()
    slow = ScriptJob("import time\ntime.sleep(1.0)\n", cpu_limit=1.0, cost=5.0)
    fast = ScriptJob("x = 1\n", cpu_limit=1.0)

    def on_done(index: int, result: ScriptResult) -> None:
        seen[index] = time.monotonic() - t0
        assert result.status == "pass"
        if index == 1:
            assert 0 not in seen  # the slow one still runs

    results = sb.run_scripts([slow, fast], on_done=on_done)
    assert [r.status for r in results] == ["pass", "pass"]
    assert seen[1] < seen[0] and seen[0] >= 1.0  # the fast result came first, while the slow one slept


def test_priority_then_cost_order_and_mixed_jobs() -> None:
    order: list[int] = []
    lock = threading.Lock()

    def on_done(index: int, result: object) -> list[CommandJob] | None:
        with lock:
            order.append(index)
        if index == 0:
            return [CommandJob([Step(["sh", "-c", "echo added"])], priority=5)]
        return None

    inputs = [(1,), (2,)]
    call = CallJob(code="def f(x):\n    return x * 2\n", entry_point="f", inputs_key="mixed",
                   inputs_payload=lambda: encode_inputs(inputs), limits=[1.0, 1.0], costs=[0.01, 0.01],
                   check=lambda i, out: codec.decode(out) == 2 * inputs[i][0], priority=2)  # fmt: skip
    jobs = [
        ScriptJob("pass", priority=1, cost=0.0),  # 0
        ScriptJob("pass", priority=1, cost=9.0),  # 1: same priority, more expensive: first
        CommandJob([Step(["true"])], priority=0),  # 2: lowest priority value: before everything
        call,  # 3
    ]
    with Sandbox(SandboxSettings(workers=1)) as box:
        results = box.run(jobs, on_done=on_done)
    assert order == [2, 1, 0, 3, 4]
    assert [r.status for r in results] == ["pass"] * 5
    added = results[4]
    assert isinstance(added, CommandResult) and added.steps[0].stdout == b"added\n"


def test_prelude_runs_before_the_program(sb: Sandbox) -> None:
    # The EvalPlus guard as a prelude: open() is gone for the program; without the prelude it is there.
    probe = "def f(x):\n    return open is None\n"
    inputs = [(0,)]

    def job(prelude: str) -> CallJob:
        return CallJob(code=probe, entry_point="f", inputs_key="prelude-probe",
                       inputs_payload=lambda: encode_inputs(inputs), limits=[1.0], costs=[0.01],
                       check=lambda i, out: codec.decode(out) is True, prelude=prelude)  # fmt: skip

    guarded, plain = sb.run_calls([job(EVALPLUS_GUARD_PRELUDE), job("")])
    assert guarded.status == "pass" and plain.status == "fail"
    script = "import os\nassert os.getcwd is None and exit is None\n"
    results = sb.run_scripts([ScriptJob(script, prelude=EVALPLUS_GUARD_PRELUDE), ScriptJob(script)])
    assert [r.status for r in results] == ["pass", "fail"]
    # The prelude's own names stay out of the program's namespace.
    leak = "assert 'faulthandler' not in globals() and 'name' not in globals()\n"
    assert sb.run_scripts([ScriptJob(leak, prelude=EVALPLUS_GUARD_PRELUDE)])[0].status == "pass"


# ------------------------------------------------------------------ settings
def test_isolation_follows_the_environment_when_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_ISOLATION", "process")
    assert isolation_mode(SandboxSettings()) == "process"
    assert isolation_mode(SandboxSettings(isolation="process")) == "process"


def test_requested_bwrap_that_cannot_start_fails_hard(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = "bubblewrap is not installed (install the `bubblewrap` package: apt-get install bubblewrap)"
    monkeypatch.setattr(sandbox_module, "_bwrap_problem", lambda: problem)
    with pytest.raises(SandboxError, match="apt-get install bubblewrap"):
        isolation_mode(SandboxSettings(isolation="bwrap"))
    with pytest.raises(SandboxError, match="bubblewrap"):
        Sandbox(SandboxSettings(isolation="bwrap"))
    monkeypatch.delenv("HARNESS_ISOLATION", raising=False)
    assert isolation_mode(SandboxSettings()) == "process"  # auto falls back
