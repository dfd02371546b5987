"""Static checks and the AST rewrite that keep self-validation from being fooled.

A response's tests pass validation only when they ran and could fail.  This
module decides, without running anything, what makes a response's tests
worthless, and rewrites the tests so that the sandboxed run can prove the
rest (see :mod:`generation.validate_prelude`, the trusted runner):

* **Static rejections**, each with its own outcome and a one-line reason:
  ``no_asserts`` (the tests check nothing), ``exit_in_code`` (the code part
  calls ``sys.exit``/``os._exit``/``exit``/``quit``/``os.abort``, raises
  ``SystemExit`` or registers an ``atexit`` handler: it could end the program
  before the tests or after a failure), ``swallowed_assert`` (an assert, a
  ``raise AssertionError`` or a call of a test function that asserts, inside
  a ``try`` whose handler catches ``AssertionError``, ``Exception``,
  ``BaseException`` or everything without re-raising, or inside
  ``contextlib.suppress`` of those), ``tautology`` (no assert refers to
  anything the code defines: ``assert True``, asserts on the tests' own
  values, or on a redefinition of the code's function in the tests), and
  ``dead_tests`` (every assert on the code sits under a condition that is
  constant false, such as ``if False:`` or ``if __name__ == "main":``).
* **The rewrite**: every ``assert`` becomes a call of the runner's hook that
  counts it (and whether it refers to the code) and records a failure even
  when something later catches the ``AssertionError``; ``assert*`` method
  and function calls (``self.assertEqual``, ``np.testing.assert_allclose``)
  and ``raise AssertionError`` are counted and recorded the same way;
  ``test*`` functions and methods mark themselves as entered, so the runner
  calls the ones nothing called (as pytest would); ``unittest.main()`` and
  ``pytest.main()`` are replaced by the runner's own collection (they would
  exit the program).

"Refers to the code" is a name-based taint: the names the code part binds at
its top level (functions, classes, variables; imports excluded), and every
name of the tests assigned from an expression that refers to one (``obj =
Stack()``, ``for x in solve(...)``, ``self.cache = LRUCache(2)``, a helper's
parameters when it is called with such a value), to a fixed point.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

#: The name of the runner's hook object in the program's namespace (set by the trusted runner).
HOOK = "__harness_validate__"
#: Exception names whose handler swallows a failing assert.
BROAD = frozenset({"AssertionError", "Exception", "BaseException"})
#: ``module.function`` calls that end the program (or run code after it ends).
EXIT_FUNCTIONS = frozenset({("sys", "exit"), ("os", "_exit"), ("posix", "_exit"), ("os", "abort"),
                            ("atexit", "register"), ("builtins", "exit"), ("builtins", "quit"),
                            ("_thread", "exit")})  # fmt: skip
#: Context managers that check that their body raises (counted as asserts on what the body refers to).
RAISES = frozenset({"assertRaises", "assertRaisesRegex", "assertWarns", "assertWarnsRegex", "raises", "warns"})


@dataclass
class Analysis:
    """What the static checks found in one response, and the tests to run."""

    problem: str | None  # an outcome that makes running pointless, or None
    detail: str  # one line: why (empty when nothing is wrong)
    tests: str = ""  # the instrumented tests (source), when problem is None
    functions: list[str] = field(default_factory=list)  # top-level test* functions of the tests
    classes: list[str] = field(default_factory=list)  # top-level classes that may hold tests
    unittest: bool = False  # the tests use unittest (the runner watches its results)
    checks: int = 0  # asserts and assert calls found in the tests
    relevant: int = 0  # of them, those that refer to a name the code defines

    def meta(self) -> dict[str, object]:
        """What the runner needs besides the sources (plain literals)."""
        return {"functions": self.functions, "classes": self.classes, "unittest": self.unittest}


# ------------------------------------------------------------------ names
def _target_names(target: ast.AST) -> Iterator[str]:
    """Names (and ``self.attr`` chains) a binding target stores to."""
    for node in ast.walk(target):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            chain = _chain(node)
            if chain:
                yield chain


def _chain(node: ast.AST) -> str | None:
    """``a.b.c`` for an attribute chain rooted at a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _refs(nodes: Iterable[ast.AST | None]) -> set[str]:
    """Names read in ``nodes``, plus each attribute chain rooted at a name and its prefixes."""
    out: set[str] = set()
    for top in nodes:
        if top is None:
            continue
        for node in ast.walk(top):
            if isinstance(node, ast.Name):
                out.add(node.id)
            elif isinstance(node, ast.Attribute):
                chain = _chain(node)
                if chain:
                    head, *rest = chain.split(".")
                    for k in range(len(rest)):
                        out.add(".".join([head, *rest[: k + 1]]))
    return out


def _bound_names(stmts: Iterable[ast.stmt], imports: bool = False) -> set[str]:
    """Names bound at module level by these statements (compound statements entered, defs not)."""
    out: set[str] = set()
    for s in stmts:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(s.name)
        elif isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in s.targets if isinstance(s, ast.Assign) else [s.target]:
                out.update(n for n in _target_names(t) if "." not in n)
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            if imports:
                out.update((a.asname or a.name).split(".")[0] for a in s.names)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            out.update(n for n in _target_names(s.target) if "." not in n)
            out |= _bound_names(s.body, imports) | _bound_names(s.orelse, imports)
        elif isinstance(s, (ast.While, ast.If)):
            out |= _bound_names(s.body, imports) | _bound_names(s.orelse, imports)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                if item.optional_vars is not None:
                    out.update(n for n in _target_names(item.optional_vars) if "." not in n)
            out |= _bound_names(s.body, imports)
        elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            out |= _bound_names(s.body, imports) | _bound_names(s.orelse, imports)  # type: ignore[attr-defined]
            out |= _bound_names(s.finalbody, imports)  # type: ignore[attr-defined]
            for h in s.handlers:  # type: ignore[attr-defined]
                out |= _bound_names(h.body, imports)
        elif isinstance(s, ast.Match):
            for case in s.cases:
                out |= _bound_names(case.body, imports)
    return out


def code_names(tree: ast.Module) -> set[str]:
    """What the code part defines: names bound at its top level, imports excluded, plus ``global`` names."""
    names = _bound_names(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            names.update(node.names)
    return names


class _Aliases:
    """Which local names stand for which modules and module functions (from the imports of a tree)."""

    def __init__(self, tree: ast.AST) -> None:
        self.modules: dict[str, str] = {}
        self.functions: dict[str, tuple[str, str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.modules[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.modules[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.functions[a.asname or a.name] = (node.module, a.name)

    def resolve(self, func: ast.AST) -> tuple[str, str] | None:
        """``(module, name)`` a callee stands for, when it is a module function."""
        if isinstance(func, ast.Attribute):
            chain = _chain(func.value)
            if chain is not None:
                head, _, rest = chain.partition(".")
                module = self.modules.get(head)
                if module is not None:
                    return (f"{module}.{rest}" if rest else module, func.attr)
            return None
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        return None


def _callee_name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


# ------------------------------------------------------------------ the code part
def exit_in_code(tree: ast.Module) -> str | None:
    """A one-line description of the first way the code part can end the program, or None."""
    aliases = _Aliases(tree)
    defined = code_names(tree) | _bound_names(tree.body, imports=True)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "SystemExit" and "SystemExit" not in defined:
                return f"the code raises SystemExit (line {line})"
        callees: list[ast.AST] = []
        if isinstance(node, ast.Call):
            callees.append(node.func)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            callees += node.decorator_list  # @atexit.register
        for func in callees:
            target = aliases.resolve(func)
            if target in EXIT_FUNCTIONS:
                return f"the code calls {target[0]}.{target[1]}() (line {getattr(func, 'lineno', line)})"
            if isinstance(func, ast.Name) and func.id in ("exit", "quit") and func.id not in defined:
                return f"the code calls {func.id}() (line {func.lineno})"
    return None


# ------------------------------------------------------------------ constant conditions
_UNKNOWN = object()


def _const(node: ast.AST) -> object:
    """The value of a condition made of constants (``__name__`` is ``"__main__"``), else _UNKNOWN."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return {"__name__": "__main__", "__debug__": True}.get(node.id, _UNKNOWN)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        v = _const(node.operand)
        return _UNKNOWN if v is _UNKNOWN else not v
    if isinstance(node, ast.BoolOp):
        values = [_const(v) for v in node.values]
        if isinstance(node.op, ast.And):
            if any(v is not _UNKNOWN and not v for v in values):
                return False
            return True if all(v is not _UNKNOWN for v in values) else _UNKNOWN
        if any(v is not _UNKNOWN and v for v in values):
            return True
        return False if all(v is not _UNKNOWN for v in values) else _UNKNOWN
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _const(node.left), _const(node.comparators[0])
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        op = node.ops[0]
        try:
            if isinstance(op, ast.Eq):
                return left == right
            if isinstance(op, ast.NotEq):
                return left != right
            if isinstance(op, ast.Is):
                return left is right
            if isinstance(op, ast.IsNot):
                return left is not right
        except Exception:  # noqa: BLE001 - constants only; be safe
            return _UNKNOWN
    return _UNKNOWN


# ------------------------------------------------------------------ the tests
@dataclass
class _Check:
    node: ast.AST
    refs: set[str]
    dead: bool
    swallowed: bool
    relevant: bool = False


class _Scan:
    """One pass over the tests: checks with their context, calls, bindings, swallowing ``try`` blocks."""

    def __init__(self, aliases: _Aliases) -> None:
        self.aliases = aliases
        self.checks: list[_Check] = []
        self.raises: list[tuple[ast.Raise, bool]] = []  # raise AssertionError, swallowed?
        self.swallowed_calls: list[tuple[str, int]] = []  # names called inside a swallowing try
        self.calls: dict[str, set[str]] = {}  # function name -> names it calls
        self.has_checks: set[str] = set()  # functions that contain a check or raise AssertionError
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.bindings: list[tuple[list[str], set[str]]] = []  # targets <- refs
        self.call_args: list[tuple[str, set[str]]] = []  # function name, refs of the arguments
        self.swallow_lines: dict[int, str] = {}  # id(check) -> handler description

    # -- helpers
    def _broad_handler(self, node: ast.Try) -> str | None:
        for h in node.handlers:
            names = []
            if h.type is None:
                names = ["everything"]
            else:
                types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
                names = [_callee_name(t) for t in types if _callee_name(t) in BROAD]
            if names and not self._reraises(h.body):
                return "except" + ("" if names == ["everything"] else f" {names[0]}")
        return None

    @staticmethod
    def _reraises(body: list[ast.stmt]) -> bool:
        """The handler re-raises, fails the test (``self.fail``) or exits with a failure status."""
        for node in ast.walk(ast.Module(body=body, type_ignores=[])):
            if isinstance(node, ast.Raise):
                return True
            if isinstance(node, ast.Call):
                name = _callee_name(node.func)
                if name in ("fail", "abort"):
                    return True
                # exit(1) fails the program; exit() and exit(0) end it "successfully"
                if name in ("exit", "_exit") and node.args and _const(node.args[0]) not in (0, None, False):
                    return True
        return False

    def _suppressing(self, node: ast.With | ast.AsyncWith) -> bool:
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and _callee_name(call.func) == "suppress":
                if any(_callee_name(a) in BROAD for a in call.args):
                    return True
        return False

    @staticmethod
    def _is_raises(node: ast.With | ast.AsyncWith) -> bool:
        return any(isinstance(i.context_expr, ast.Call) and _callee_name(i.context_expr.func) in RAISES
                   for i in node.items)  # fmt: skip

    @staticmethod
    def is_check_call(node: ast.stmt) -> bool:
        """An expression statement calling ``assert*``/``assert_*`` (unittest, numpy.testing, helpers)."""
        return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and _callee_name(node.value.func).startswith("assert"))  # fmt: skip

    @staticmethod
    def is_assertion_raise(node: ast.stmt) -> bool:
        """``raise AssertionError`` or ``raise AssertionError(...)``."""
        if not isinstance(node, ast.Raise) or node.exc is None:
            return False
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(exc, ast.Name) and exc.id == "AssertionError"

    def _note_calls(self, node: ast.AST, where: str, swallow: bool) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                name = _callee_name(sub.func)
                if name:
                    self.calls.setdefault(where, set()).add(name)
                    if swallow:
                        self.swallowed_calls.append((name, getattr(sub, "lineno", 0)))
                    args = [*sub.args, *(k.value for k in sub.keywords)]
                    if args:
                        self.call_args.append((name, _refs(args)))
                        # what is passed to the code may be changed by it: lst = []; fill(lst); assert lst
                        passed = [n for a in args for n in _refs([a]) if isinstance(a, (ast.Name, ast.Attribute))]
                        if passed:
                            self.bindings.append((passed, _refs([sub.func])))

    def _bind(self, targets: Iterable[ast.AST], value: ast.AST | None) -> None:
        names = [n for t in targets for n in _target_names(t)]
        if names and value is not None:
            self.bindings.append((names, _refs([value])))

    # -- the walk
    def block(self, stmts: list[ast.stmt], where: str, dead: bool, swallow: bool, handler: str) -> None:
        """Visit a statement list in its context (dead branch, inside a swallowing ``try``)."""
        for s in stmts:
            self.stmt(s, where, dead, swallow, handler)

    def stmt(self, s: ast.stmt, where: str, dead: bool, swallow: bool, handler: str) -> None:
        """One statement."""
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.functions.setdefault(s.name, []).append(s)
            params = [a.arg for a in (*s.args.posonlyargs, *s.args.args, *s.args.kwonlyargs)]
            for deco in s.decorator_list:  # pytest.mark.parametrize("x", [...]) feeds the parameters
                if params:
                    self.bindings.append((params, _refs([deco])))
            for node in ast.walk(s):
                if isinstance(node, ast.Return) and node.value is not None:
                    self.bindings.append(([s.name], _refs([node.value])))
            self.block(s.body, s.name, dead, False, "")
            return
        if isinstance(s, ast.ClassDef):
            for deco in s.decorator_list:
                self._note_calls(deco, where, swallow)
            self.block(s.body, where, dead, swallow, handler)
            return
        if isinstance(s, ast.If):
            self._note_calls(s.test, where, swallow)
            v = _const(s.test)
            self.block(s.body, where, dead or (v is not _UNKNOWN and not v), swallow, handler)
            self.block(s.orelse, where, dead or (v is not _UNKNOWN and bool(v)), swallow, handler)
            return
        if isinstance(s, ast.While):
            self._note_calls(s.test, where, swallow)
            v = _const(s.test)
            self.block(s.body, where, dead or (v is not _UNKNOWN and not v), swallow, handler)
            self.block(s.orelse, where, dead, swallow, handler)
            return
        if isinstance(s, (ast.For, ast.AsyncFor)):
            self._note_calls(s.iter, where, swallow)
            self._bind([s.target], s.iter)
            self.block(s.body, where, dead, swallow, handler)
            self.block(s.orelse, where, dead, swallow, handler)
            return
        if isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self._note_calls(item.context_expr, where, swallow)
                if item.optional_vars is not None:
                    self._bind([item.optional_vars], item.context_expr)
            # with redirect_stdout(buf): main()  -> buf holds what the code wrote
            held = [n.id for i in s.items for n in ast.walk(i.context_expr) if isinstance(n, ast.Name)]
            if held:
                self.bindings.append((held, _refs(s.body)))
            if self._is_raises(s):
                self.checks.append(_Check(s, _refs(s.body), dead, swallow))
                if swallow:
                    self.swallow_lines[id(s)] = handler
                self.has_checks.add(where)
            inner = swallow or self._suppressing(s)
            self.block(s.body, where, dead, inner, handler if swallow else "with suppress(...)")
            return
        if isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            broad = self._broad_handler(s)  # type: ignore[arg-type]
            self.block(s.body, where, dead, swallow or broad is not None, handler if swallow else (broad or ""))
            for h in s.handlers:  # type: ignore[attr-defined]
                if h.name:  # except ValueError as exc: the exception came from the try body
                    self.bindings.append(([h.name], _refs(s.body)))  # type: ignore[attr-defined]
                self.block(h.body, where, dead, swallow, handler)
            self.block(s.orelse, where, dead, swallow, handler)  # type: ignore[attr-defined]
            self.block(s.finalbody, where, dead, swallow, handler)  # type: ignore[attr-defined]
            return
        if isinstance(s, ast.Match):
            self._note_calls(s.subject, where, swallow)
            for case in s.cases:
                self.block(case.body, where, dead, swallow, handler)
            return
        # simple statements
        self._note_calls(s, where, swallow)
        if isinstance(s, ast.Assign):
            self._bind(s.targets, s.value)
        elif isinstance(s, (ast.AnnAssign, ast.AugAssign)):
            self._bind([s.target], s.value)
        for node in ast.walk(s):
            if isinstance(node, ast.NamedExpr):
                self._bind([node.target], node.value)
            elif isinstance(node, ast.comprehension):
                self._bind([node.target], node.iter)
        if isinstance(s, ast.Assert):
            self.checks.append(_Check(s, _refs([s.test]), dead, swallow))
        elif self.is_check_call(s):
            call = s.value  # type: ignore[attr-defined]
            self.checks.append(_Check(s, _refs([*call.args, *(k.value for k in call.keywords)]), dead, swallow))
        elif self.is_assertion_raise(s):
            self.raises.append((s, swallow))  # type: ignore[arg-type]
            if swallow:
                self.swallow_lines[id(s)] = handler
            self.has_checks.add(where)
            return
        else:
            return
        if swallow:
            self.swallow_lines[id(self.checks[-1].node)] = handler
        self.has_checks.add(where)


def _taint(seed: set[str], scan: _Scan) -> set[str]:
    """Names that carry the code's values: ``seed`` and everything bound from them, to a fixed point."""
    tainted = set(seed)
    params: dict[str, list[str]] = {}
    for name, defs in scan.functions.items():
        for d in defs:
            params.setdefault(name, []).extend(a.arg for a in (*d.args.posonlyargs, *d.args.args,
                                                               *d.args.kwonlyargs) if a.arg not in ("self", "cls"))  # fmt: skip
            if d.args.vararg:
                params[name].append(d.args.vararg.arg)
            if d.args.kwarg:
                params[name].append(d.args.kwarg.arg)
    edges = list(scan.bindings) + [(params[n], refs) for n, refs in scan.call_args if n in params]
    changed = True
    while changed:
        changed = False
        for targets, refs in edges:
            if refs & tainted and not tainted.issuperset(targets):
                tainted.update(targets)
                changed = True
    return tainted


def analyse(code_tree: ast.Module, tests_tree: ast.Module) -> Analysis:
    """Decide whether the tests can prove anything; when they can, instrument them (``tests_tree`` is rewritten)."""
    aliases = _Aliases(tests_tree)
    scan = _Scan(aliases)
    scan.block(tests_tree.body, "<module>", False, False, "")
    checks = len(scan.checks)
    if not checks:
        return Analysis("no_asserts", "the tests assert nothing")
    why = exit_in_code(code_tree)
    if why:
        return Analysis("exit_in_code", why)
    # functions that (transitively) assert: calling one inside a swallowing try swallows its asserts
    asserting = set(scan.has_checks)
    grew = True
    while grew:
        grew = False
        for fn, called in scan.calls.items():
            if fn not in asserting and fn in scan.functions and called & asserting:
                asserting.add(fn)
                grew = True
    for c in scan.checks:
        if c.swallowed:
            how = scan.swallow_lines.get(id(c.node)) or "except"
            return Analysis("swallowed_assert", f"line {c.node.lineno} of the tests: an assert inside try/{how}")  # type: ignore[attr-defined]
    for r, swallowed in scan.raises:
        if swallowed:
            how = scan.swallow_lines.get(id(r)) or "except"
            return Analysis("swallowed_assert", f"line {r.lineno} of the tests: raise AssertionError inside "
                                                f"try/{how}")  # fmt: skip
    for name, line in scan.swallowed_calls:
        if name in asserting and name in scan.functions:
            return Analysis("swallowed_assert", f"line {line} of the tests: {name}() asserts, called inside a try "
                                                "that catches its AssertionError")  # fmt: skip
    defined = code_names(code_tree)
    shadowed = defined & _bound_names(tests_tree.body, imports=True)
    tainted = _taint(defined - shadowed, scan)
    for c in scan.checks:
        c.relevant = bool(c.refs & tainted)
    relevant = [c for c in scan.checks if c.relevant]
    if not relevant:
        if shadowed and any(c.refs & shadowed for c in scan.checks):
            return Analysis("tautology", f"the tests rebind {', '.join(sorted(shadowed))} (def, class, import or "
                                         "assignment) and assert on that, not on the code")  # fmt: skip
        return Analysis("tautology", "no assert refers to anything the code defines"
                        + (f" ({', '.join(sorted(defined)[:5])})" if defined else " (the code defines no names)"))
    if all(c.dead for c in relevant):
        line = relevant[0].node.lineno  # type: ignore[attr-defined]
        return Analysis("dead_tests", f"every assert on the code is under a condition that is always false "
                                      f"(line {line} of the tests)")  # fmt: skip
    rewriter = _Rewrite({id(c.node): c.relevant for c in scan.checks}, aliases)
    tree = rewriter.visit(tests_tree)
    ast.fix_missing_locations(tree)
    functions = [s.name for s in tests_tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and s.name.startswith("test")]  # fmt: skip
    classes = [s.name for s in tests_tree.body if isinstance(s, ast.ClassDef)
               and (s.name.startswith("Test") or any("TestCase" in ast.unparse(b) for b in s.bases))]  # fmt: skip
    uses_unittest = any(m == "unittest" or m.startswith("unittest.") for m in aliases.modules.values()) or any(
        mod == "unittest" or mod.startswith("unittest.") for mod, _ in aliases.functions.values())
    return Analysis(None, "", ast.unparse(tree), functions, classes, uses_unittest, checks, len(relevant))


def _hook(method: str, *args: ast.expr, keywords: list[ast.keyword] | None = None) -> ast.Call:
    return ast.Call(ast.Attribute(ast.Name(HOOK, ast.Load()), method, ast.Load()), list(args), keywords or [])


class _Rewrite(ast.NodeTransformer):
    """The instrumentation: counted asserts, recorded failures, entered tests, no ``unittest.main()``."""

    def __init__(self, relevant: dict[int, bool], aliases: _Aliases) -> None:
        self.relevant = relevant
        self.aliases = aliases
        self._class: str | None = None
        self.depth = 0  # 0: module level; 1: a top-level class body

    def _flag(self, node: ast.AST) -> ast.Constant:
        return ast.Constant(int(self.relevant.get(id(node), False)))

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        flag = self._flag(node)
        self.generic_visit(node)
        exc: ast.expr = ast.Call(ast.Name("AssertionError", ast.Load()), [node.msg], []) if node.msg is not None \
            else ast.Name("AssertionError", ast.Load())  # fmt: skip
        new = ast.If(ast.UnaryOp(ast.Not(), _hook("check", node.test, flag)), [ast.Raise(exc, None)], [])
        return ast.copy_location(new, node)

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if _Scan.is_check_call(node):
            flag = self._flag(node)
            self.generic_visit(node)
            call = node.value
            assert isinstance(call, ast.Call)
            node.value = ast.copy_location(_hook("call", flag, call.func, *call.args, keywords=call.keywords), call)
            return node
        if isinstance(node.value, ast.Call) and self._is_main(node.value):
            return ast.copy_location(ast.Expr(_hook("deferred_main")), node)
        self.generic_visit(node)
        return node

    def _is_main(self, call: ast.Call) -> bool:
        target = self.aliases.resolve(call.func)
        if target in (("unittest", "main"), ("pytest", "main")):
            return True
        # sys.exit(unittest.main()) / exit(pytest.main([...]))
        return bool(call.args) and isinstance(call.args[0], ast.Call) and _callee_name(call.func) == "exit" and \
            self.aliases.resolve(call.args[0].func) in (("unittest", "main"), ("pytest", "main"))  # fmt: skip

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        if _Scan.is_assertion_raise(node):
            assert node.exc is not None
            node.exc = ast.copy_location(_hook("raised", node.exc), node.exc)
        return node

    def _visit_with(self, node: ast.With | ast.AsyncWith) -> ast.AST | list[ast.AST]:
        flag = self._flag(node)
        self.generic_visit(node)
        if id(node) in self.relevant:
            return [ast.copy_location(ast.Expr(_hook("count", flag)), node), node]
        return node

    visit_With = _visit_with
    visit_AsyncWith = _visit_with

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        depth = self.depth
        self.depth = 2
        self.generic_visit(node)
        self.depth = depth
        if depth <= 1 and node.name.startswith("test"):
            owner = self._class if depth == 1 else None
            label = f"{owner}.{node.name}" if owner else node.name
            node.body.insert(0, ast.copy_location(ast.Expr(_hook("enter", ast.Constant(label))), node.body[0]))
        return node

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        depth, owner = self.depth, self._class
        if depth == 0:
            self.depth, self._class = 1, node.name
        else:
            self.depth = 2
        self.generic_visit(node)
        self.depth, self._class = depth, owner
        return node
