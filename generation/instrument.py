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
* **The rewrite** (edits of the source text at the AST's positions, so line
  numbers stay those of the response, see :class:`_Edits`): every ``assert``
  becomes a call of the runner's hook that counts it (and whether it refers
  to the code) and records a failure even when something later catches the
  ``AssertionError``; ``assert*`` method and function calls
  (``self.assertEqual``, ``np.testing.assert_allclose``), ``with
  self.assertRaises(...)``/``pytest.raises`` and ``raise AssertionError`` are
  counted and recorded the same way; ``test*`` functions and methods mark
  themselves as entered, so the runner calls the ones nothing called (as
  pytest would); ``unittest.main()`` and ``pytest.main()`` are replaced by the
  runner's own collection (they would exit the program).

"Refers to the code" is a name-based taint: the names the code part binds at
its top level (functions, classes, variables; imports excluded), and every
name of the tests assigned from an expression that refers to one (``obj =
Stack()``, ``for x in solve(...)``, ``self.cache = LRUCache(2)``, a helper's
parameters when it is called with such a value), to a fixed point.
"""

from __future__ import annotations

import ast
import re
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


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` (itself included), in no particular order: :func:`ast.walk` without its
    generators of generators (the scan walks every test statement; this is about twice as fast)."""
    stack = [node]
    pop, push, extend = stack.pop, stack.append, stack.extend
    AST = ast.AST
    while stack:
        n = pop()
        yield n
        for name in n._fields:
            v = getattr(n, name, None)
            if isinstance(v, list):
                extend(x for x in v if isinstance(x, AST))
            elif isinstance(v, AST):
                push(v)


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
    """Names read in ``nodes``, plus each attribute chain rooted at a name (``self.cache.get``, ``self.cache``)."""
    out: set[str] = set()
    for top in nodes:
        if top is None:
            continue
        for node in _walk(top):
            if isinstance(node, ast.Name):
                out.add(node.id)
            elif isinstance(node, ast.Attribute):
                chain = _chain(node)
                if chain:
                    out.add(chain)
    return out


def _simple_refs(node: ast.AST) -> set[str]:
    """:func:`_refs` of a name or an attribute chain, without a walk."""
    out: set[str] = set()
    while isinstance(node, ast.Attribute):
        chain = _chain(node)
        if chain is None:
            return out
        out.add(chain)
        node = node.value
    if isinstance(node, ast.Name):
        out.add(node.id)
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


def code_names(tree: ast.Module, globals_: bool = True) -> set[str]:
    """What the code part defines: names bound at its top level, imports excluded, plus ``global`` names.

    ``globals_=False`` skips the walk for ``global`` statements (the caller saw no such word in the source).
    """
    names = _bound_names(tree.body)
    if globals_:
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
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.add(node)

    def add(self, node: ast.Import | ast.ImportFrom) -> None:
        """Record the names one import statement binds."""
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self.modules[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    self.modules[top] = top
        elif node.module and not node.level:
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
    """One pass over the tests: checks in their context, calls, bindings, imports, the edits to make."""

    def __init__(self) -> None:
        self.aliases = _Aliases(ast.Module(body=[], type_ignores=[]))
        self.checks: list[_Check] = []
        self.raises: list[tuple[ast.Raise, bool]] = []  # raise AssertionError, swallowed?
        self.swallowed_calls: list[tuple[str, int]] = []  # names called inside a swallowing try
        self.calls: dict[str, set[str]] = {}  # function name -> names it calls
        self.has_checks: set[str] = set()  # functions that contain a check or raise AssertionError
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.bindings: list[tuple[list[str], set[str]]] = []  # targets <- refs
        self.call_args: list[tuple[str, ast.Call]] = []  # calls with arguments, by callee name
        self.swallow_lines: dict[int, str] = {}  # id(check) -> handler description
        self.mains: list[ast.Call] = []  # unittest.main() / pytest.main() calls to defer
        self.tests: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []  # (label, def) of test*

    # -- helpers
    def _broad_handler(self, node: ast.Try) -> str | None:
        for h in node.handlers:
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

    @staticmethod
    def _suppressing(node: ast.With | ast.AsyncWith) -> bool:
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and _callee_name(call.func) == "suppress":
                if any(_callee_name(a) in BROAD for a in call.args):
                    return True
        return False

    @staticmethod
    def raises_items(node: ast.With | ast.AsyncWith) -> list[ast.withitem]:
        """The items of a ``with`` that check that its body raises (``self.assertRaises``, ``pytest.raises``)."""
        return [i for i in node.items if isinstance(i.context_expr, ast.Call)
                and _callee_name(i.context_expr.func) in RAISES]  # fmt: skip

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

    def _expr(self, node: ast.AST | None, where: str, swallow: bool, refs: set[str] | None = None) -> None:
        """One walk of an expression (or simple statement): calls, walrus and comprehension bindings, and
        (into ``refs``) the names and attribute chains it reads."""
        if node is None:
            return
        for sub in _walk(node):
            if refs is not None:
                if isinstance(sub, ast.Name):
                    refs.add(sub.id)
                    continue
                if isinstance(sub, ast.Attribute):
                    chain = _chain(sub)
                    if chain:
                        refs.add(chain)
                    continue
            if isinstance(sub, ast.Call):
                name = _callee_name(sub.func)
                if not name:
                    continue
                self.calls.setdefault(where, set()).add(name)
                if swallow:
                    self.swallowed_calls.append((name, getattr(sub, "lineno", 0)))
                if sub.args or sub.keywords:
                    self.call_args.append((name, sub))
                    # what is passed to the code may be changed by it: lst = []; fill(lst); assert lst
                    passed = [n for a in sub.args if isinstance(a, (ast.Name, ast.Attribute)) for n in _simple_refs(a)]
                    if passed:
                        self.bindings.append((passed, _simple_refs(sub.func)))
            elif isinstance(sub, ast.NamedExpr):
                self._bind([sub.target], sub.value)
            elif isinstance(sub, ast.comprehension):
                self._bind([sub.target], sub.iter)

    def _bind(self, targets: Iterable[ast.AST], value: ast.AST | None) -> None:
        names = [n for t in targets for n in _target_names(t)]
        if names and value is not None:
            self.bindings.append((names, _refs([value])))

    def _note_check(self, check: _Check, where: str, handler: str) -> None:
        self.checks.append(check)
        if check.swallowed:
            self.swallow_lines[id(check.node)] = handler
        self.has_checks.add(where)

    # -- the walk
    def block(self, stmts: list[ast.stmt], where: str, dead: bool, swallow: bool, handler: str,
              owner: str | None = None, top: bool = False) -> None:  # fmt: skip
        """Visit a statement list in its context (dead branch, inside a swallowing ``try``, a class body)."""
        for s in stmts:
            self.stmt(s, where, dead, swallow, handler, owner, top)

    def stmt(self, s: ast.stmt, where: str, dead: bool, swallow: bool, handler: str,
             owner: str | None = None, top: bool = False) -> None:  # fmt: skip
        """One statement (``top``: at module level; ``owner``: directly in that top-level class)."""
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.functions.setdefault(s.name, []).append(s)
            if s.name.startswith("test") and (top or owner):
                self.tests.append((f"{owner}.{s.name}" if owner else s.name, s))
            params = [a.arg for a in (*s.args.posonlyargs, *s.args.args, *s.args.kwonlyargs)]
            for deco in s.decorator_list:  # pytest.mark.parametrize("x", [...]) feeds the parameters
                self._expr(deco, where, swallow)
                if params:
                    self.bindings.append((params, _refs([deco])))
            self.block(s.body, s.name, dead, False, "")
            return
        if isinstance(s, ast.ClassDef):
            for deco in s.decorator_list:
                self._expr(deco, where, swallow)
            self.block(s.body, where, dead, swallow, handler, owner=s.name if top else None)
            return
        if isinstance(s, ast.If):
            self._expr(s.test, where, swallow)
            v = _const(s.test)
            self.block(s.body, where, dead or (v is not _UNKNOWN and not v), swallow, handler, top=top)
            self.block(s.orelse, where, dead or (v is not _UNKNOWN and bool(v)), swallow, handler, top=top)
            return
        if isinstance(s, ast.While):
            self._expr(s.test, where, swallow)
            v = _const(s.test)
            self.block(s.body, where, dead or (v is not _UNKNOWN and not v), swallow, handler)
            self.block(s.orelse, where, dead, swallow, handler)
            return
        if isinstance(s, (ast.For, ast.AsyncFor)):
            self._expr(s.iter, where, swallow)
            self._bind([s.target], s.iter)
            self.block(s.body, where, dead, swallow, handler)
            self.block(s.orelse, where, dead, swallow, handler)
            return
        if isinstance(s, (ast.With, ast.AsyncWith)):
            held: list[str] = []
            for item in s.items:
                self._expr(item.context_expr, where, swallow)
                if item.optional_vars is not None:
                    self._bind([item.optional_vars], item.context_expr)
                held += [n.id for n in ast.walk(item.context_expr) if isinstance(n, ast.Name)]
            if held:  # with redirect_stdout(buf): main()  -> buf holds what the code wrote
                self.bindings.append((held, _refs(s.body)))
            if self.raises_items(s):
                self._note_check(_Check(s, _refs(s.body), dead, swallow), where, handler)
            inner = swallow or self._suppressing(s)
            self.block(s.body, where, dead, inner, handler if swallow else "with suppress(...)")
            return
        if isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            broad = self._broad_handler(s)  # type: ignore[arg-type]
            self.block(s.body, where, dead, swallow or broad is not None, handler if swallow else (broad or ""),  # type: ignore[attr-defined]
                       top=top)  # fmt: skip
            for h in s.handlers:  # type: ignore[attr-defined]
                if h.name:  # except ValueError as exc: the exception came from the try body
                    self.bindings.append(([h.name], _refs(s.body)))  # type: ignore[attr-defined]
                self.block(h.body, where, dead, swallow, handler, top=top)
            self.block(s.orelse, where, dead, swallow, handler, top=top)  # type: ignore[attr-defined]
            self.block(s.finalbody, where, dead, swallow, handler, top=top)  # type: ignore[attr-defined]
            return
        if isinstance(s, ast.Match):
            self._expr(s.subject, where, swallow)
            for case in s.cases:
                self.block(case.body, where, dead, swallow, handler)
            return
        # simple statements
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            self.aliases.add(s)
            return
        if isinstance(s, ast.Assert):
            refs: set[str] = set()
            self._expr(s.test, where, swallow, refs)
            self._expr(s.msg, where, swallow)
            self._note_check(_Check(s, refs, dead, swallow), where, handler)
            return
        self._expr(s, where, swallow)
        if isinstance(s, ast.Assign):
            self._bind(s.targets, s.value)
        elif isinstance(s, (ast.AnnAssign, ast.AugAssign)):
            self._bind([s.target], s.value)
        elif isinstance(s, ast.Return) and s.value is not None and where != "<module>":
            self.bindings.append(([where], _refs([s.value])))  # a helper returning the code's values
        elif self.is_check_call(s):
            call = s.value  # type: ignore[attr-defined]
            refs = _refs([*call.args, *(k.value for k in call.keywords)])
            self._note_check(_Check(s, refs, dead, swallow), where, handler)
        elif self.is_assertion_raise(s):
            self.raises.append((s, swallow))  # type: ignore[arg-type]
            if swallow:
                self.swallow_lines[id(s)] = handler
            self.has_checks.add(where)
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
            call = s.value
            target = self.aliases.resolve(call.func)
            inner = call.args[0] if call.args and isinstance(call.args[0], ast.Call) else None
            if target in _MAINS or (inner is not None and _callee_name(call.func) == "exit"
                                    and self.aliases.resolve(inner.func) in _MAINS):  # sys.exit(unittest.main())
                self.mains.append(call)


_MAINS = (("unittest", "main"), ("pytest", "main"))


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
    edges = list(scan.bindings) + [(params[n], _refs([*call.args, *(k.value for k in call.keywords)]))
                                   for n, call in scan.call_args if params.get(n)]  # fmt: skip
    changed = True
    while changed:
        changed = False
        for targets, refs in edges:
            if refs & tainted and not tainted.issuperset(targets):
                tainted.update(targets)
                changed = True
    return tainted


#: Words without which the code part cannot end the program (saves walking most code trees).
_EXIT_WORDS = re.compile(r"exit|quit|abort|atexit|SystemExit")


def analyse(code: str, tests: str, code_tree: ast.Module | None = None, tests_tree: ast.Module | None = None
            ) -> Analysis:  # fmt: skip
    """Decide whether the tests can prove anything; when they can, instrument them.

    ``code_tree``/``tests_tree``: the sources already parsed (else they are
    parsed here; a SyntaxError propagates).
    """
    code_tree = code_tree if code_tree is not None else ast.parse(code)
    tests_tree = tests_tree if tests_tree is not None else ast.parse(tests)
    scan = _Scan()
    scan.block(tests_tree.body, "<module>", False, False, "", top=True)
    checks = len(scan.checks)
    if not checks:
        return Analysis("no_asserts", "the tests assert nothing")
    why = exit_in_code(code_tree) if _EXIT_WORDS.search(code) else None
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
    defined = code_names(code_tree, "global" in code)
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
    functions = [s.name for s in tests_tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and s.name.startswith("test")]  # fmt: skip
    classes = [s.name for s in tests_tree.body if isinstance(s, ast.ClassDef)
               and (s.name.startswith("Test") or any((_chain(b) or "").endswith("TestCase") for b in s.bases))]  # fmt: skip
    mods = [*scan.aliases.modules.values(), *(m for m, _ in scan.aliases.functions.values())]
    uses_unittest = any(m == "unittest" or m.startswith("unittest.") for m in mods)
    source = _Edits(tests).apply(scan)
    return Analysis(None, "", source, functions, classes, uses_unittest, checks, len(relevant))


class _Edits:
    """The instrumentation as edits of the tests' source text (positions from the AST), so lines stay put.

    * ``assert T, M``  ->  ``HOOK.check((T), R) or HOOK.fail((M))`` (an expression
      statement: valid wherever the assert was, the message evaluated only on failure);
    * ``F(args)`` (an ``assert*`` call)  ->  ``HOOK.call(R, F, args)``;
    * ``raise AssertionError(...)``  ->  ``raise HOOK.raised(AssertionError(...))``;
    * ``with self.assertRaises(E):``  ->  ``with HOOK.counted(R, self.assertRaises(E)):``;
    * a ``test*`` function's first statement gets ``HOOK.enter(LABEL)`` before it (on its
      line when it is a simple statement, else on a line of its own);
    * ``unittest.main(...)``/``pytest.main(...)``  ->  ``HOOK.deferred_main()``.
    """

    def __init__(self, source: str) -> None:
        self.data = source.encode("utf-8")
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.edits: list[tuple[int, int, int, bytes]] = []  # start, order (0: insert before), end, text

    def at(self, line: int, col: int) -> int:
        """Byte offset of an AST position (col_offset counts UTF-8 bytes)."""
        return self.starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.at(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                self.at(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]  # fmt: skip

    def text(self, node: ast.AST) -> bytes:
        a, b = self.span(node)
        return self.data[a:b]

    def replace(self, node: ast.AST, new: bytes) -> None:
        a, b = self.span(node)
        self.edits.append((a, 1, b, new))

    def insert(self, pos: int, new: bytes) -> None:
        self.edits.append((pos, 0, pos, new))

    def apply(self, scan: _Scan) -> str:
        """Every edit of the scan, applied from the end (edits never overlap)."""
        hook = HOOK.encode()
        for c in scan.checks:
            flag = b"1" if c.relevant else b"0"
            node = c.node
            if isinstance(node, ast.Assert):
                msg = b"(" + self.text(node.msg) + b")" if node.msg is not None else b""
                self.replace(node, hook + b".check((" + self.text(node.test) + b"), " + flag + b") or " + hook
                             + b".fail(" + msg + b")")  # fmt: skip
            elif isinstance(node, ast.Expr):
                call = node.value
                assert isinstance(call, ast.Call)
                a, b = self.span(call)
                if len(call.args) == 1 and not call.keywords and isinstance(call.args[0], ast.GeneratorExp):
                    # f(x for x in y): the generator shares the call's parentheses; it needs its own now
                    self.edits.append((a, 1, b, hook + b".call(" + flag + b", " + self.text(call.func) + b", "
                                       + ast.unparse(call.args[0]).encode() + b")"))  # fmt: skip
                    continue
                _, f_end = self.span(call.func)
                paren = self.data.index(b"(", f_end)
                self.edits.append((a, 1, paren + 1, hook + b".call(" + flag + b", " + self.text(call.func) + b", "))
            else:  # a with whose items check that the body raises
                assert isinstance(node, (ast.With, ast.AsyncWith))
                for item in _Scan.raises_items(node):
                    self.replace(item.context_expr, hook + b".counted(" + flag + b", " + self.text(item.context_expr)
                                 + b")")  # fmt: skip
        for r, _ in scan.raises:
            assert r.exc is not None
            self.replace(r.exc, hook + b".raised(" + self.text(r.exc) + b")")
        for call in scan.mains:
            self.replace(call, hook + b".deferred_main()")
        for label, fn in scan.tests:
            first = fn.body[0]
            mark = hook + b".enter(" + repr(label).encode() + b")"
            pos = self.at(first.lineno, first.col_offset)
            if isinstance(first, _COMPOUND):
                # a decorated def or class starts at its first decorator, not at its ``def`` line
                decorators = getattr(first, "decorator_list", None)
                line = min([first.lineno, *(d.lineno for d in decorators or ())])
                line_start = self.starts[line - 1]
                indent = self.data[line_start : line_start + first.col_offset]
                self.insert(line_start, indent + mark + b"\n")
            else:
                self.insert(pos, mark + b"; ")
        out = self.data
        for a, _, b, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:a] + new + out[b:]
        return out.decode("utf-8")


_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.FunctionDef,
             ast.AsyncFunctionDef, ast.ClassDef, ast.Match) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())  # fmt: skip
