"""What a being's source holds, read from its AST without running it: for creation reports and people.

``source_analyse`` returns::

    {"functions": [...], "classes": [...], "calls": [...], "imports": [...], "lines": 12, "complexity": 3}

and ``"error"`` besides when the source does not parse (stored sources always do: they are
validated before anything is written).

Complexity is McCabe's cyclomatic number, 1 + one per branch point: ``if`` statements and
``… if … else …`` expressions, ``for``/``async for``/``while`` loops, each ``except`` clause,
each extra operand of ``and``/``or``, each ``for`` and each ``if`` of a comprehension, each
``assert`` (it may raise) and each ``case`` of a ``match``. ``with`` blocks, ``try`` itself,
``else`` and ``finally`` add nothing: they do not choose between paths. The number of the
whole source is in ``complexity``; each function has its own, nested functions included.

Pure Python, no Django: the sandbox's side may use it too.
"""

from __future__ import annotations

import ast
from typing import Any, Final

# The capabilities being code calls other beings with (see beings/runtime/zygote.py).
CAPABILITIES: Final = ("execution", "summon")


def source_analyse(source: str) -> dict[str, Any]:
    """Functions, classes, calls to other beings, imports, line count and complexity of a source."""
    analysis: dict[str, Any] = {
        "functions": [],
        "classes": [],
        "calls": [],
        "imports": [],
        "lines": len(source.splitlines()),
        "complexity": 1,
    }
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as error:
        # ValueError: a NUL byte, which ast.parse refuses without a SyntaxError.
        line = getattr(error, "lineno", None)
        analysis["error"] = f"{type(error).__name__}: {getattr(error, 'msg', None) or error}" + (
            f" (line {line})" if line else ""
        )
        return analysis
    except (RecursionError, MemoryError):  # the parser runs out of stack on deep nesting
        analysis["error"] = "the source nests too deeply to parse"
        return analysis
    collector = _Collector()
    try:
        collector.visit(tree)
        complexity = complexity_of(tree)
    except RecursionError:  # parsed, but too deep for the recursive walk of the collector
        analysis["error"] = "the source nests too deeply to analyse"
        return analysis
    analysis.update(
        functions=collector.functions,
        classes=collector.classes,
        calls=collector.calls,
        imports=collector.imports,
        complexity=complexity,
    )
    return analysis


def complexity_of(node: ast.AST) -> int:
    """The cyclomatic complexity of a node and everything under it (the branch points are listed above)."""
    points = 0
    for child in ast.walk(node):
        if isinstance(child, ast.If | ast.IfExp | ast.For | ast.AsyncFor | ast.While | ast.ExceptHandler):
            points += 1
        elif isinstance(child, ast.BoolOp):
            points += len(child.values) - 1
        elif isinstance(child, ast.comprehension):
            points += 1 + len(child.ifs)
        elif isinstance(child, ast.Assert | ast.match_case):
            points += 1
    return 1 + points


def signature_of(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """A function's signature as written, e.g. ``run(a, b=1, *args, **kwargs) -> int``."""
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{node.name}({ast.unparse(node.args)}){returns}"


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> dict[str, Any]:
    return {
        "name": node.name,
        "qualname": qualname,
        "signature": signature_of(node),
        "docstring": ast.get_docstring(node),
        "line": node.lineno,
        "async": isinstance(node, ast.AsyncFunctionDef),
        "decorators": [ast.unparse(decorator) for decorator in node.decorator_list],
        "complexity": complexity_of(node),
    }


def _literal_text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


class _Collector(ast.NodeVisitor):
    """Walks a module once, keeping the qualified name of the scope it is in."""

    def __init__(self) -> None:
        self.functions: list[dict[str, Any]] = []
        self.classes: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.imports: list[dict[str, Any]] = []
        self._scope: list[str] = []
        self._class: dict[str, Any] | None = None  # the class whose body is being walked, for its methods

    def _qualname(self, name: str) -> str:
        return ".".join([*self._scope, name])

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        entry = _function(node, self._qualname(node.name))
        if self._class is not None:
            self._class["methods"].append(entry)
        else:
            self.functions.append(entry)
        self._walk_scope(node, name=node.name, owner=None)

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        entry = {
            "name": node.name,
            "qualname": self._qualname(node.name),
            "bases": [ast.unparse(base) for base in node.bases] + [ast.unparse(keyword) for keyword in node.keywords],
            "docstring": ast.get_docstring(node),
            "line": node.lineno,
            "decorators": [ast.unparse(decorator) for decorator in node.decorator_list],
            "methods": [],
        }
        self.classes.append(entry)
        self._walk_scope(node, name=node.name, owner=entry)

    def _walk_scope(self, node: ast.AST, *, name: str, owner: dict[str, Any] | None) -> None:
        outer = self._class
        self._scope.append(name)
        # Only definitions directly in a class body are its methods; a function inside a method is not.
        self._class = owner
        try:
            self.generic_visit(node)
        finally:
            self._scope.pop()
            self._class = outer

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in CAPABILITIES:
            # execution(target, ...) names its target first; summon(name=...) takes keywords only.
            target = _literal_text(node.args[0]) if node.args else None
            if target is None:
                target = next((_literal_text(kw.value) for kw in node.keywords if kw.arg in ("name", "target")), None)
            self.calls.append({"function": node.func.id, "target": target, "line": node.lineno})
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.append({"module": alias.name, "names": [], "line": node.lineno})

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        self.imports.append({"module": module, "names": [alias.name for alias in node.names], "line": node.lineno})


def entrypoint_parameters(source: str, *, entrypoint: str, kind: str) -> list[dict[str, Any]] | None:
    """The parameters a run passes to a being's entrypoint, as written; None when the source has no such function.

    The function is the module's ``def entrypoint``; for a class being, the method of the first class
    the module defines (as the sandbox picks it), without ``self``. Each parameter is
    ``{"name", "kind", "default", "annotation"}``: ``kind`` is ``positional_only``,
    ``positional_or_keyword``, ``var_positional``, ``keyword_only`` or ``var_keyword`` (as in
    ``inspect``), ``default`` and ``annotation`` are source text or None.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    body: list[ast.stmt] = tree.body
    method = kind == "class"
    if method:
        first = next((node for node in tree.body if isinstance(node, ast.ClassDef)), None)
        if first is None:
            return None
        body = first.body
    # The last definition of a name is the one the module (or class) holds.
    functions = (node for node in body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))
    found = [node for node in functions if node.name == entrypoint]
    if not found:
        return None
    node = found[-1]
    arguments = node.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    described = [
        _parameter(
            argument, "positional_only" if index < len(arguments.posonlyargs) else "positional_or_keyword", default
        )
        for index, (argument, default) in enumerate(zip(positional, defaults, strict=True))
    ]
    static = any(isinstance(mark, ast.Name) and mark.id == "staticmethod" for mark in node.decorator_list)
    if method and not static:
        described = described[1:]  # self, or cls of a classmethod
    if arguments.vararg is not None:
        described.append(_parameter(arguments.vararg, "var_positional", None))
    described += [
        _parameter(argument, "keyword_only", default)
        for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    ]
    if arguments.kwarg is not None:
        described.append(_parameter(arguments.kwarg, "var_keyword", None))
    return described


def _parameter(argument: ast.arg, kind: str, default: ast.expr | None) -> dict[str, Any]:
    return {
        "name": argument.arg,
        "kind": kind,
        "default": None if default is None else ast.unparse(default),
        "annotation": None if argument.annotation is None else ast.unparse(argument.annotation),
    }
