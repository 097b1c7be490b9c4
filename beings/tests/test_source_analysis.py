"""What the AST analysis of a being's source reports: functions, classes, calls to other beings, imports."""

from __future__ import annotations

import textwrap

import pytest

from beings.source_analysis import source_analyse


def analyse(source: str) -> dict:
    return source_analyse(textwrap.dedent(source))


def test_functions_have_their_signature_docstring_line_and_decorators() -> None:
    """Every function is listed with its signature as written, its docstring, line, async flag and decorators."""
    analysis = analyse(
        '''\
        import functools

        def run(a, b=1, *args, c: int, **kwargs) -> int:
            """Add things up.

            More words.
            """
            return a + b

        @functools.cache
        @trace("x")
        async def fetch(url: str, /, timeout: float = 2.0):
            return url
        '''
    )

    run, fetch = analysis["functions"]
    assert run == {
        "name": "run",
        "qualname": "run",
        "signature": "run(a, b=1, *args, c: int, **kwargs) -> int",
        "docstring": "Add things up.\n\nMore words.",
        "line": 3,
        "async": False,
        "decorators": [],
        "complexity": 1,
    }
    assert fetch["signature"] == "fetch(url: str, /, timeout: float=2.0)"
    assert (fetch["docstring"], fetch["line"], fetch["async"]) == (None, 12, True)
    assert fetch["decorators"] == ["functools.cache", "trace('x')"]


def test_nested_functions_are_named_by_their_scope() -> None:
    """A function inside a function or a method is a function, named by where it lives, not a method."""
    analysis = analyse(
        """\
        def run():
            def helper(x):
                return x
            return helper(1)

        class Box:
            def open(self):
                def key():
                    return 1
                return key()
        """
    )

    assert [function["qualname"] for function in analysis["functions"]] == ["run", "run.helper", "Box.open.key"]
    assert [method["qualname"] for method in analysis["classes"][0]["methods"]] == ["Box.open"]


def test_classes_have_bases_docstring_and_methods_with_signatures() -> None:
    """A class lists its bases (keywords included), docstring and its methods with their signatures."""
    analysis = analyse(
        '''\
        class Counter(Base, metaclass=Meta):
            """Counts."""

            def __init__(self, start: int = 0) -> None:
                self.value = start

            @property
            def double(self) -> int:
                """Twice the value."""
                return self.value * 2

            class Inner:
                pass
        '''
    )

    counter, inner = analysis["classes"]
    assert (counter["name"], counter["bases"], counter["docstring"], counter["line"]) == (
        "Counter",
        ["Base", "metaclass=Meta"],
        "Counts.",
        1,
    )
    assert [(m["signature"], m["docstring"], m["decorators"]) for m in counter["methods"]] == [
        ("__init__(self, start: int=0) -> None", None, []),
        ("double(self) -> int", "Twice the value.", ["property"]),
    ]
    assert (inner["qualname"], inner["bases"], inner["methods"]) == ("Counter.Inner", [], [])
    assert analysis["functions"] == []


def test_calls_to_other_beings_name_their_literal_target() -> None:
    """execution() names its target first, summon() by name=; a target computed at run time is None."""
    analysis = analyse(
        """\
        def run(who):
            total = execution("adder", 1, 2)
            execution(who)
            child = summon(name="helper", source="def run():\\n    return 1\\n")
            summon(name=who + "x")
            obj.execution("not a capability")
            print(execution(target="by-keyword"))
            return [execution("inner", i) for i in range(3)]
        """
    )

    assert analysis["calls"] == [
        {"function": "execution", "target": "adder", "line": 2},
        {"function": "execution", "target": None, "line": 3},
        {"function": "summon", "target": "helper", "line": 4},
        {"function": "summon", "target": None, "line": 5},
        {"function": "execution", "target": "by-keyword", "line": 7},
        {"function": "execution", "target": "inner", "line": 8},
    ]


def test_imports_attempted_are_all_listed_wherever_they_are() -> None:
    """Every import and from-import, at module level or inside a function, relative ones with their dots."""
    analysis = analyse(
        """\
        import os, json as j
        from collections import OrderedDict, deque

        def run():
            from . import sibling
            from ..pkg.mod import thing
            import subprocess
        """
    )

    assert analysis["imports"] == [
        {"module": "os", "names": [], "line": 1},
        {"module": "json", "names": [], "line": 1},
        {"module": "collections", "names": ["OrderedDict", "deque"], "line": 2},
        {"module": ".", "names": ["sibling"], "line": 5},
        {"module": "..pkg.mod", "names": ["thing"], "line": 6},
        {"module": "subprocess", "names": [], "line": 7},
    ]


@pytest.mark.parametrize(
    ("body", "complexity"),
    [
        ("return 1", 1),
        ("if a:\n    return 1\nreturn 2", 2),
        ("if a:\n    return 1\nelif b:\n    return 2\nelse:\n    return 3", 3),
        ("return 1 if a else 2", 2),
        ("for i in a:\n    pass\nelse:\n    pass", 2),
        ("while a:\n    break", 2),
        ("async for i in a:\n    pass", 2),
        ("try:\n    pass\nexcept ValueError:\n    pass\nexcept KeyError:\n    pass\nfinally:\n    pass", 3),
        ("with a as b:\n    pass", 1),
        ("return a and b and c", 3),
        ("return a and b or c", 3),
        ("return [x for x in a if x if x > 1]", 4),
        ("return {x: y for x in a for y in b}", 3),
        ("assert a", 2),
        ("match a:\n    case 1:\n        pass\n    case _:\n        pass", 3),
    ],
)
def test_complexity_counts_the_documented_branch_points(body: str, complexity: int) -> None:
    """Cyclomatic complexity is 1 plus each branch point listed in the module's docstring."""
    source = "async def run(a, b=0, c=0):\n" + textwrap.indent(body, "    ") + "\n"

    analysis = source_analyse(source)

    assert analysis["complexity"] == complexity
    assert analysis["functions"][0]["complexity"] == complexity


def test_complexity_of_the_whole_source_adds_every_function() -> None:
    """The source's complexity counts the branch points of all its functions over one base path."""
    analysis = analyse(
        """\
        def one(a):
            if a:
                return 1

        def two(b):
            while b:
                b -= 1
        """
    )

    assert [function["complexity"] for function in analysis["functions"]] == [2, 2]
    assert analysis["complexity"] == 3


@pytest.mark.parametrize(
    ("source", "lines"),
    [("", 0), ("x = 1", 1), ("x = 1\n", 1), ("x = 1\n\n\ny = 2\n", 4), ("x = 1\r\ny = 2", 2)],
)
def test_lines_counts_the_lines_of_the_source(source: str, lines: int) -> None:
    """The line count is the number of lines, a final newline adding none."""
    assert source_analyse(source)["lines"] == lines


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def run(:\n    pass\n", "SyntaxError: invalid syntax (line 1)"),
        ("x = 1\n  y = 2\n", "IndentationError: unexpected indent (line 2)"),
        ("a\x00b", "SyntaxError: source code string cannot contain null bytes"),
    ],
)
def test_a_source_that_does_not_parse_gets_an_error_and_empty_lists(source: str, error: str) -> None:
    """An unparsable source is not an exception: the analysis says why, with nothing found in it."""
    analysis = source_analyse(source)

    assert analysis["error"] == error
    assert (analysis["functions"], analysis["classes"], analysis["calls"], analysis["imports"]) == ([], [], [], [])
    assert analysis["complexity"] == 1


def test_a_parsable_source_has_no_error_key() -> None:
    """``error`` appears only when the source does not parse."""
    assert "error" not in source_analyse("def run():\n    return 1\n")
