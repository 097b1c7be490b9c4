"""The RestrictedPython policy beings compile under: the default one, and augmented assignment of attributes and items.

RestrictedPython refuses ``a.b += x`` and ``a[k] += x``; a class being that keeps state needs them.
They become what a plain read and a plain assignment of the same target compile to, the target's
object (and key) evaluated once, in Python's order::

    a.b += x    ->  _aug_object_ = a
                    _write_(_aug_object_).b = _inplacevar_('+=', _getattr_(_aug_object_, 'b'), x)
                    del _aug_object_

    a[k] += x   ->  _aug_object_ = a
                    _aug_key_ = k
                    _write_(_aug_object_)[_aug_key_] = _inplacevar_('+=', _getitem_(_aug_object_, _aug_key_), x)
                    del _aug_object_, _aug_key_

The store target is the one RestrictedPython makes of a plain assignment, so the attribute name is
checked by the same rules (no ``_`` prefix, no interpreter internals) and the write goes through
``_write_``; the read goes through ``_getattr_``/``_getitem_`` as a plain read would. The temporary
names start with ``_``, which no being's source may use, so a being can neither read nor clash with them.

Imported by the sandbox child: must not import Django.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations

OBJECT = "_aug_object_"
KEY = "_aug_key_"


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _call(function: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_load(function), args=list(args), keywords=[])


class BeingPolicy(RestrictingNodeTransformer):
    """RestrictedPython's RestrictingNodeTransformer, letting through augmented assignment of attributes and items."""

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | Iterable[ast.AST] | None:
        if not isinstance(node.target, ast.Attribute | ast.Subscript):
            return super().visit_AugAssign(node)  # names: n += 1 is n = _inplacevar_('+=', n, 1)
        # Python evaluates the target's object and key, reads, evaluates the value, then stores.
        store = self.visit(node.target)  # '_write_(a).b' or '_write_(a)[k]', its name checked
        value = self.visit(node.value)
        written = store.value
        if not (isinstance(written, ast.Call) and isinstance(written.func, ast.Name) and written.func.id == "_write_"):
            raise NotImplementedError("RestrictedPython no longer guards a store with _write_(...)")
        statements: list[ast.stmt] = [ast.Assign(targets=[ast.Name(id=OBJECT, ctx=ast.Store())], value=written.args[0])]
        written.args[0] = _load(OBJECT)
        temporaries = [OBJECT]
        if isinstance(store, ast.Attribute):
            read = _call("_getattr_", _load(OBJECT), ast.Constant(store.attr))
        else:
            statements.append(ast.Assign(targets=[ast.Name(id=KEY, ctx=ast.Store())], value=store.slice))
            store.slice = _load(KEY)
            temporaries.append(KEY)
            read = _call("_getitem_", _load(OBJECT), _load(KEY))
        operator = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        statements.append(ast.Assign(targets=[store], value=_call("_inplacevar_", operator, read, value)))
        statements.append(ast.Delete(targets=[ast.Name(id=name, ctx=ast.Del()) for name in temporaries]))
        for statement in statements:
            copy_locations(statement, node)
        return statements
