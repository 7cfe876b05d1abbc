"""One constructor per record type, by field name, at the cost of a positional build.

Records are NamedTuples, declared once in nlstat/model/. Every place that builds one names
each value after the field it fills and leaves out the fields that keep their default:

    append(new(InetSocket, values_of(InetSocket, protocol=protocol, local_port=swap[sport], ...)))

`values_of(R, **values)` gives R's values in R's field order: the keyword's value, or the
field's default (a field without a default must be given; an unknown name is refused). Called
as a function it costs a call and a dict per record, which a hot loop cannot afford (a
generated constructor function cost 0.04 us per record, 8% of -ant). So a hot function is
marked `@specialised`: on its first call its source is read back, every
`values_of(R, name=expression, ...)` in it is written out as the tuple display of R's fields in
order (`(protocol, family, ..., 0, 0)`, defaults as constants), and the function is compiled
again from that text, once per process (~0.4 ms). The loop then builds records exactly as a
hand-written `tuple.__new__(R, (...))` would, and the field order lives only in the record's
declaration: a field added to a record (at its end or anywhere) is filled with its default by
every builder, or with a value where a builder names it.

Where the source cannot be read back (an install without .py files), the function runs as
written: `values_of` is then an ordinary call, slower but giving the same records.
"""

from __future__ import annotations
import __future__

import re
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def values_of(record: Any, **values: Any) -> Tuple[Any, ...]:
    """`record`'s values in its field order: each field's keyword value, else its default."""
    fields: Tuple[str, ...] = record._fields
    unknown = set(values) - set(fields)
    if unknown:
        raise TypeError(f"{record.__name__} has no field {sorted(unknown)}")
    defaults: Dict[str, Any] = record._field_defaults
    missing = [field for field in fields if field not in values and field not in defaults]
    if missing:
        raise TypeError(f"{record.__name__}: no value for {missing}")
    return tuple([values[field] if field in values else defaults[field] for field in fields])


def tuple_display(record: Any, values: Dict[str, str]) -> str:
    """The source text of `values_of(record, **values)` given as expression texts:
    "(expression, ..., default, ...)" in the record's field order."""
    fields: Tuple[str, ...] = record._fields
    unknown = set(values) - set(fields)
    if unknown:
        raise TypeError(f"{record.__name__} has no field {sorted(unknown)}")
    defaults: Dict[str, Any] = record._field_defaults
    parts = []
    for field in fields:
        if field in values:
            parts.append(f"({values[field]})")
        elif field in defaults:
            default = defaults[field]
            if not isinstance(default, (int, str, bytes, type(None))):
                raise TypeError(f"{record.__name__}.{field}: default {default!r} is no constant")
            parts.append(repr(default))
        else:
            raise TypeError(f"{record.__name__}: no value for {field!r}")
    return "(" + ", ".join(parts) + ",)"


def fields_of(record: Any, value: Any) -> Tuple[Any, ...]:
    """`(state, inode) = fields_of(InetSocket, record)` reads those fields of `record` by name.

    Only in a @specialised function, which writes the statement out as the unpack of the whole
    record, `(_skipped, _skipped, state, ..., inode, _skipped) = record`, in the record's field
    order: as cheap as a hand-written unpack, and a field added to the record changes nothing
    at the reader. The target names must be field names of `record`."""
    raise TypeError("fields_of() is only written out in a @specialised function whose source "
                    "can be read (nlstat is installed without its .py files?)")


_CALL = re.compile(r"\b(values_of|fields_of)\(")


def _call_end(text: str, start: int) -> int:
    """The index just past the parenthesis that closes the one opened before `start`."""
    depth = 1
    index = start
    quote = ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise SyntaxError("values_of( is not closed")


def _written_out(call: str, namespace: Dict[str, Any]) -> str:
    """`values_of(R, a=x, b=y)` (its source text) -> R's tuple display."""
    import _ast  # the parser's nodes without the ast module's import (1 ms)

    tree: Any = compile(call, "<values_of>", "eval", _ast.PyCF_ONLY_AST)
    node = tree.body
    if len(node.args) != 1 or not node.keywords or any(k.arg is None for k in node.keywords):
        raise SyntaxError(f"values_of wants a record and keywords: {call!r}")
    lines = call.splitlines(True)
    record = eval(_segment(lines, node.args[0]), namespace)
    values = {}
    for keyword in node.keywords:
        values[keyword.arg] = _segment(lines, keyword.value)
    return tuple_display(record, values)


def _unpack_written_out(source: str, start: int, call: str, namespace: Dict[str, Any]
                        ) -> Tuple[int, str]:
    """`(a, b) = fields_of(R, x)` (the call's text at `start`) -> (where the statement's
    target starts, "(_skipped, a, b, ...) = x" in R's field order)."""
    import _ast

    before = source[:start].rstrip()
    if not before.endswith("="):
        raise TypeError(f"fields_of() is not the value of an assignment: {call!r}")
    targets_end = len(before[:-1].rstrip())
    if source[targets_end - 1] != ")":
        raise TypeError(f"fields_of() wants a parenthesised target list: {call!r}")
    opening = source.rindex("(", 0, targets_end)
    names = [name.strip() for name in source[opening + 1:targets_end - 1].split(",")]
    names = [name for name in names if name]
    tree: Any = compile(call, "<fields_of>", "eval", _ast.PyCF_ONLY_AST)
    node = tree.body
    if len(node.args) != 2 or node.keywords:
        raise SyntaxError(f"fields_of wants a record and a value: {call!r}")
    lines = call.splitlines(True)
    record = eval(_segment(lines, node.args[0]), namespace)
    fields: Tuple[str, ...] = record._fields
    unknown = [name for name in names if name not in fields]
    if unknown or len(set(names)) != len(names):
        raise TypeError(f"{record.__name__} has no field {unknown} (or one is named twice)")
    targets = ", ".join(field if field in names else "_skipped" for field in fields)
    return opening, f"({targets}) = ({_segment(lines, node.args[1])})"


def _segment(lines: List[str], node: Any) -> str:
    """The source text of one expression node (offsets are UTF-8 byte columns)."""
    first, last = node.lineno - 1, node.end_lineno - 1
    encoded = [line.encode() for line in lines[first:last + 1]]
    if first == last:
        return encoded[0][node.col_offset:node.end_col_offset].decode()
    encoded[0] = encoded[0][node.col_offset:]
    encoded[-1] = encoded[-1][:node.end_col_offset]
    return b"".join(encoded).decode()


def _source_lines(filename: str, module: Dict[str, Any]) -> List[str]:
    """The lines of a module's source file (linecache would import tokenize: 1 ms more)."""
    try:
        with open(filename, encoding="utf-8") as file:
            return file.readlines()
    except OSError:
        pass
    loader = module.get("__loader__")
    try:
        text = loader.get_source(module["__name__"]) if loader is not None else None
    except (ImportError, OSError):
        text = None
    return text.splitlines(True) if text else []


def _calls_values_of(code: Any) -> bool:
    """Does this code (or a comprehension or function in it) still name values_of?"""
    if "values_of" in code.co_names or "fields_of" in code.co_names:
        return True
    return any(_calls_values_of(const) for const in code.co_consts if hasattr(const, "co_names"))


def specialise(function: F) -> Optional[F]:
    """`function` compiled again with its values_of calls written out, or None where its
    source cannot be read back."""
    code = function.__code__
    if code.co_freevars:
        raise TypeError(f"{function.__qualname__}: a closure cannot be specialised")
    module = function.__globals__
    lines = _source_lines(code.co_filename, module)
    if not lines:
        return None
    first = code.co_firstlineno - 1  # the first decorator's line
    while first < len(lines) and not lines[first].lstrip().startswith(("def ", "async def ")):
        first += 1
    if first >= len(lines):
        return None
    indent = len(lines[first]) - len(lines[first].lstrip())
    # The body starts after the signature, which may span lines ("def f(\n    a: int,\n) -> R:").
    rest = "".join(lines[first:])
    end = first + 1 + rest.count("\n", 0, _call_end(rest, rest.index("(") + 1))
    while end < len(lines):
        line = lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    # Blank lines in front keep the line numbers of the file (tracebacks, coverage).
    source = "\n" * first + "".join(line[indent:] if line.strip() else "\n"
                                    for line in lines[first:end])
    pieces = []
    position = 0
    for match in _CALL.finditer(source):
        if match.start() < position:
            continue
        line_start = source.rfind("\n", 0, match.start()) + 1
        if "#" in source[line_start:match.start()]:
            continue  # named in a comment
        start = match.start()
        try:
            close = _call_end(source, match.end())
            call = source[start:close]
            if match.group(1) == "values_of":
                display = _written_out(call, module)
            else:
                start, display = _unpack_written_out(source, start, call, module)
        except SyntaxError:
            continue  # named in a docstring; a real call that failed is caught below
        pieces.append(source[position:start])
        # The display keeps the call's line count, so the lines after it keep their numbers.
        pieces.append(display + "\n" * source.count("\n", start, close))
        position = close
    pieces.append(source[position:])
    compiled = compile("".join(pieces), code.co_filename, "exec",
                       __future__.annotations.compiler_flag, dont_inherit=True)
    if _calls_values_of(compiled) or len(pieces) == 1:
        raise TypeError(f"{function.__qualname__}: a values_of call is not written "
                        "values_of(Record, field=expression, ...)")
    namespace: Dict[str, Any] = {}
    exec(compiled, module, namespace)
    new = namespace[function.__name__]
    new.__qualname__ = function.__qualname__
    new.__doc__ = function.__doc__
    new.__wrapped__ = function  # as first_use: the function as written
    result: F = new
    return result


def specialised(function: F) -> F:
    """Decorator: `function` specialised (see specialise()) on its first call."""
    compiled: List[Callable[..., Any]] = []

    def first_use(*args: Any, **kwargs: Any) -> Any:
        if not compiled:
            compiled.append(specialise(function) or function)
            _rebind(function, first_use, compiled[0])
        return compiled[0](*args, **kwargs)

    first_use.__name__ = function.__name__
    first_use.__qualname__ = function.__qualname__
    first_use.__doc__ = function.__doc__
    first_use.__wrapped__ = function  # type: ignore[attr-defined]
    result: F = first_use  # type: ignore[assignment]
    return result


def _rebind(function: Callable[..., Any], old: Callable[..., Any], new: Callable[..., Any]) -> None:
    """Put `new` where `old` was found (the class or module that defines `function`), so that
    later calls, per record in a method such as Ipv4Decoder._one, skip the first-use step."""
    *path, name = function.__qualname__.split(".")
    holder: Any = function.__globals__.get(path[0]) if path else None
    for part in path[1:]:
        holder = getattr(holder, part, None)
    if not path:
        if function.__globals__.get(name) is old:
            function.__globals__[name] = new
    elif holder is not None and holder.__dict__.get(name) is old:
        setattr(holder, name, new)
