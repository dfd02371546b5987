"""The trusted runner of self-validation programs: a sandbox prelude (standard library only).

:mod:`generation.validate` sends each response as a sandbox
:class:`~harness.execution.ScriptJob` whose *prelude* is this file's source
(compiled once per worker, run in the forked runner right before the job)
and whose program is the response's code, its instrumented tests
(:mod:`generation.instrument`), and a last line::

    __harness_validate_finish__(NONCE, META)

with a fresh random nonce per run.  The prelude puts the hooks the
instrumented tests call in ``builtins`` (``__harness_validate__``) and
records a thread that raises (``threading.excepthook``).  The last line, once
the code and the tests ran to their end, calls as pytest would the
``test*`` functions and runs the ``unittest.TestCase`` and ``Test*`` classes
nothing ran, joins the threads the program left running, and ends by raising
``SystemExit`` with the **trailer** ``harness-validate:NONCE VERDICT EXECUTED
RELEVANT DETAIL``.  The sandbox carries that text back in its own result
frame (the runner's ``done`` message), never through the program's output,
so nothing the program prints, and no way it ends early (``sys.exit(0)``,
``os._exit(0)``, the end of the code part) produces it: the harness passes a
response only on ``ok`` with the nonce it chose.  Verdicts:

* ``ok``: every phase finished, no assert failed anywhere (even caught), no
  thread raised, no unittest test failed, and at least one executed assert
  refers to the code;
* ``not_run``: a collected test exited early (``SystemExit`` 0), or no
  assert on the code ran (in a branch never taken, a test function with
  fixtures, ...); an exit before the last line leaves no trailer at all;
* ``swallowed``: an assert failed and the program carried on (something
  caught the ``AssertionError``);
* ``fail``: a thread raised or a unittest test failed (other failures are
  exceptions, reported by the sandbox as the program's error).

What this does not stop: a program that deliberately reads its own code
object's constants (the nonce is one) can forge the trailer.  It runs in the
sandbox all the same; the checks are against what model-written code does by
habit, not against introspection.
"""

import builtins as _builtins

FINISH_NAME = "__harness_validate_finish__"
TRAILER = "harness-validate:"
HOOK = "__harness_validate__"
PROGRAM = "<program>"  # the sandbox compiles the job under this name


def _install() -> None:
    """Put the hooks and the one-shot ``finish`` function where the job's program finds them (builtins)."""
    import sys
    import threading

    system_exit, base_exception, assertion_error = SystemExit, BaseException, AssertionError
    getframe = sys._getframe

    class Hooks:
        """What the instrumented tests call: counts, recorded failures, entered tests."""

        __slots__ = ("executed", "relevant", "failed", "entered", "thread_errors", "unittest_failures", "mains")

        def __init__(self) -> None:
            self.executed = 0
            self.relevant = 0
            self.failed: list[int] = []
            self.entered: set[str] = set()
            self.thread_errors: list[str] = []
            self.unittest_failures: list[str] = []
            self.mains = 0

        def check(self, value: object, relevant: int) -> bool:
            self.executed += 1
            self.relevant += relevant
            if value:
                return True
            self.failed.append(getframe(1).f_lineno)
            return False

        def call(self, relevant: int, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.executed += 1
            self.relevant += relevant
            try:
                return fn(*args, **kwargs)
            except assertion_error:
                self.failed.append(getframe(1).f_lineno)
                raise

        def fail(self, *msg: object) -> None:
            raise assertion_error(*msg)  # the failure itself was recorded by check()

        def counted(self, relevant: int, manager):  # type: ignore[no-untyped-def]
            self.executed += 1  # with self.assertRaises(...): a check of the body
            self.relevant += relevant
            return manager

        def raised(self, exc):  # type: ignore[no-untyped-def]
            self.failed.append(getframe(1).f_lineno)
            return exc

        def enter(self, name: str) -> None:
            self.entered.add(name)

        def deferred_main(self, *args: object, **kwargs: object) -> None:
            self.mains += 1  # unittest.main()/pytest.main(): the runner collects the tests itself

        def watch_unittest(self) -> None:
            patch_unittest(self)  # before the tests: a TextTestRunner of theirs cannot hide a failure

    def patch_unittest(hooks: Hooks) -> None:
        import unittest

        result = unittest.TestResult
        add_failure, add_error = result.addFailure, result.addError
        add_subtest, add_unexpected = result.addSubTest, result.addUnexpectedSuccess

        def note(test: object, err: object) -> None:
            value = err[1] if isinstance(err, tuple) and len(err) > 1 else err
            hooks.unittest_failures.append(f"{test}: {type(value).__name__}: {value}"[:300])

        def on_failure(self, test, err):  # type: ignore[no-untyped-def]
            note(test, err)
            return add_failure(self, test, err)

        def on_error(self, test, err):  # type: ignore[no-untyped-def]
            note(test, err)
            return add_error(self, test, err)

        def on_subtest(self, test, subtest, err):  # type: ignore[no-untyped-def]
            if err is not None:
                note(subtest, err)
            return add_subtest(self, test, subtest, err)

        def on_unexpected(self, test):  # type: ignore[no-untyped-def]
            note(test, "unexpected success of an expected failure")
            return add_unexpected(self, test)

        result.addFailure, result.addError = on_failure, on_error  # type: ignore[method-assign]
        result.addSubTest, result.addUnexpectedSuccess = on_subtest, on_unexpected  # type: ignore[method-assign]

    def marks(fn: object) -> list:  # type: ignore[type-arg]
        return list(getattr(fn, "pytestmark", None) or [])

    def call_test(fn, label: str, owner: object = None) -> None:  # type: ignore[no-untyped-def]
        """Call a test function as pytest would (skip marks, parametrize); fixtures cannot be had: skipped."""
        ms = marks(fn)
        for m in ms:
            name = getattr(m, "name", "")
            if name == "skip" or name == "xfail" or (name == "skipif" and (not m.args or m.args[0])):
                return
        cases: list[dict] = [{}]  # type: ignore[type-arg]
        for m in ms:
            if getattr(m, "name", "") != "parametrize" or len(m.args) < 2:
                continue
            names = m.args[0].replace(" ", "").split(",") if isinstance(m.args[0], str) else list(m.args[0])
            expanded = []
            for values in m.args[1]:
                values = getattr(values, "values", values)  # pytest.param(...)
                values = (values,) if len(names) == 1 else tuple(values)
                expanded += [{**c, **dict(zip(names, values))} for c in cases]
            cases = expanded
        code = getattr(fn, "__code__", None)
        if code is None:
            return
        wanted = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if owner is not None:
            wanted = wanted[1:]
        optional = len(getattr(fn, "__defaults__", None) or ()) + len(getattr(fn, "__kwdefaults__", None) or {})
        for kwargs in cases:
            missing = [w for w in wanted if w not in kwargs]
            if len(missing) > optional:
                return  # needs fixtures: not callable here (its asserts do not count as run)
            out = fn(**kwargs)
            if code.co_flags & 0x80:  # a coroutine function
                import asyncio

                asyncio.run(out)

    hooks = Hooks()

    def on_thread_error(args) -> None:  # type: ignore[no-untyped-def]
        if args.exc_type is system_exit:
            return  # as the default hook: a thread's sys.exit() ends only the thread
        who = args.thread.name if args.thread is not None else "?"
        hooks.thread_errors.append(f"thread {who} raised {args.exc_type.__name__}: {args.exc_value}")

    threading.excepthook = on_thread_error

    def finish_program(nonce: str, meta: dict) -> None:  # type: ignore[type-arg]
        """The program's last statement: collect what nothing ran, join threads, judge, raise the trailer."""
        _builtins.__dict__.pop(FINISH_NAME, None)  # one use: the program cannot call it again
        ns = getframe(1).f_globals

        def finish(verdict: str, detail: str = "") -> None:
            detail = " ".join(str(detail).split())[:300]
            raise system_exit(f"{TRAILER}{nonce} {verdict} {hooks.executed} {hooks.relevant} {detail}")

        try:
            for name in meta.get("functions", ()):
                fn = ns.get(name)
                if name not in hooks.entered and getattr(getattr(fn, "__code__", None), "co_filename", "") == PROGRAM:
                    call_test(fn, name)
            for name in meta.get("classes", ()):
                cls = ns.get(name)
                if not isinstance(cls, type):
                    continue
                unittest = sys.modules.get("unittest")
                if unittest is not None and issubclass(cls, unittest.TestCase):
                    loader = unittest.TestLoader()
                    todo = [m for m in loader.getTestCaseNames(cls) if f"{name}.{m}" not in hooks.entered]
                    if todo:
                        outcome = unittest.TestResult()
                        unittest.TestSuite(cls(m) for m in todo).run(outcome)
                        bad = outcome.failures + outcome.errors
                        if bad and not hooks.unittest_failures:
                            hooks.unittest_failures.append(f"{bad[0][0]}: {bad[0][1].strip().splitlines()[-1]}")
                    continue
                if not name.startswith("Test") or "__init__" in cls.__dict__:
                    continue  # pytest collects Test* classes without __init__
                todo = [m for m in sorted(vars(cls)) if m.startswith("test") and callable(vars(cls)[m])
                        and f"{name}.{m}" not in hooks.entered]  # fmt: skip
                for m in todo:
                    obj = cls()
                    if hasattr(obj, "setup_method"):
                        obj.setup_method(getattr(obj, m))
                    call_test(getattr(obj, m), f"{name}.{m}", owner=obj)
                    if hasattr(obj, "teardown_method"):
                        obj.teardown_method(getattr(obj, m))
            main = threading.main_thread()
            for t in threading.enumerate():
                if t is not main and not t.daemon and t is not threading.current_thread():
                    t.join()  # as the interpreter does at exit; a thread that never ends meets the time limit
        except system_exit as exc:
            if exc.code in (None, 0, False):
                finish("not_run", "a test exited (SystemExit 0) before the tests finished")
            raise
        except base_exception:
            if hooks.thread_errors:  # the main failure may be a consequence: say the thread's first
                finish("fail", hooks.thread_errors[0])
            raise
        if hooks.thread_errors:
            finish("fail", hooks.thread_errors[0])
        if hooks.unittest_failures:
            finish("fail", "unittest: " + hooks.unittest_failures[0])
        if hooks.failed:
            finish("swallowed", f"the assert at line {hooks.failed[0]} of the program failed and the program "
                                "went on")  # fmt: skip
        if hooks.relevant == 0:
            finish("not_run", "no assert on the code ran" + (f" ({hooks.executed} other asserts did)"
                                                              if hooks.executed else ""))  # fmt: skip
        finish("ok")

    setattr(_builtins, HOOK, hooks)
    setattr(_builtins, FINISH_NAME, finish_program)


if __name__ == "__prelude__":
    _install()
