"""Kernel struct layouts and the records they feed agree, field by field (issue 13.1).

Three checks:

* every Layout's names agree with its compiled format (count, order, sizes, offsets), and the
  hot decoders' formats are the ones the C structs give;
* no record is built by position in nlstat/: by keywords, or through values_of(), which the
  hot loops' @specialised functions write out in the record's field order at first use
  (nlstat/model/build.py); a field added to a record's declaration is then filled by name
  everywhere (the test rebuilds the decoders with a grown record);
* decoding a message whose every field holds a distinct value puts each value in the record
  field it belongs to (netlink and /proc alike).
"""

from __future__ import annotations

import ast
import collections
import dis
import importlib
import pkgutil
import socket
import struct
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

import nlstat
import nlstat.model
from nlstat.backends.netlink import sockdiag
from nlstat.backends.netlink.sockdiag import InetDecoder, decode_unix
from nlstat.backends.procfs.sockets import parse_inet, parse_unix
from nlstat.kernel import conntrack, link, netlink, rtnetlink
from nlstat.kernel import sockdiag as sockdiag_structs
from nlstat.kernel.layout import Layout
from nlstat.model.build import specialise, tuple_display, values_of
from nlstat.model.links import DeviceMap
from nlstat.model.routes import Route
from nlstat.model.sockets import InetSocket, UnixSocket

PACKAGE = Path(nlstat.__file__).resolve().parent


def all_layouts() -> Iterator[Tuple[str, Layout]]:
    modules = (netlink, sockdiag_structs, rtnetlink, link, conntrack, sockdiag)
    for module in modules:
        for name, value in vars(module).items():
            if isinstance(value, Layout):
                yield f"{module.__name__}.{name}", value


def record_types() -> Dict[str, type]:
    """Every NamedTuple record class of nlstat.model, by name."""
    found: Dict[str, type] = {}
    for info in pkgutil.iter_modules(nlstat.model.__path__):
        module = importlib.import_module(f"nlstat.model.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, tuple) and hasattr(value, "_fields"):
                found[name] = value
    return found


# -- layouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,layout", list(all_layouts()))
def test_layout_names_agree_with_its_format(name: str, layout: Layout) -> None:
    values = layout.unpack(bytes(layout.size))
    assert len(values) == len(layout.fields), name
    offset = 0
    for member, fmt in layout.members:
        assert layout.offset(member) == offset
        offset += struct.calcsize(layout.byte_order + fmt)
    assert offset == layout.size == layout.struct.size
    # Each value comes from its own member: pack distinct numbers, read them back by offset.
    numeric = [m for m, f in layout.members if f[-1] not in "xs" and f[-1] != "?"]
    packed = layout.pack(*[
        (index + 1) if member in numeric else bytes([index + 1])
        for index, member in enumerate(layout.fields)
    ])
    by_name = dict(zip(layout.fields, layout.unpack(packed)))
    for member, fmt in layout.members:
        if member in numeric:
            (alone,) = struct.unpack_from(layout.byte_order + fmt, packed, layout.offset(member))
            assert alone == by_name[member], (name, member)


def test_the_hot_formats_are_the_c_structs() -> None:
    # Written out from include/uapi/linux/{netlink,inet_diag,unix_diag,rtnetlink,if_link}.h.
    assert netlink.NLMSGHDR.format == "=IHHII" and netlink.NLMSGHDR.size == 16
    assert sockdiag_structs.INET_DIAG_MSG.size == 72
    assert sockdiag.INET_MSG_V4.format == "=IHHIIBBBBHH4s12x4s12xIQIIIII"
    assert sockdiag.INET_MSG_V6.format == "=IHHIIBBBBHH16s16sIQIIIII"
    assert sockdiag.INET_ROW_V4.format == "=IH10xBBBBHH4s12x4s12xIQIIIII"
    assert sockdiag.INET_ROW_V6.format == "=IH10xBBBBHH16s16sIQIIIII"
    assert sockdiag_structs.INET_DIAG_REQ_V2.format == "=BBBBI48x"
    assert sockdiag_structs.INET_DIAG_REQ.format == "=BBBB48xII"
    assert sockdiag_structs.UNIX_DIAG_REQ.format == "=BBHIIIQ"
    assert sockdiag.UNIX_MSG.format == "=IHHIIBBBxIQ"
    assert rtnetlink.RTMSG.format == "=BBBBBBBBI" and rtnetlink.RTMSG.size == 12
    assert rtnetlink.RTNEXTHOP.format == "=HBBi"
    assert link.IFINFOMSG.format == "=BxHiII" and link.IFADDRMSG.format == "=BBBBI"
    assert link.RTNL_LINK_STATS64.size == 23 * 8
    assert conntrack.NFGENMSG.format == "!BBH"


def test_a_wrong_declaration_fails_at_once() -> None:
    with pytest.raises(ValueError, match="gives 4 values"):
        Layout("bad", [("words", "4I")])
    with pytest.raises(ValueError, match="twice"):
        Layout("bad", [("a", "I"), ("a", "H")])
    with pytest.raises(ValueError, match="standard-size"):
        Layout("bad", [("a", "I")], "@")
    with pytest.raises(ValueError, match="not the size"):
        netlink.NLMSGHDR.view(nlmsg_len="H")
    with pytest.raises(KeyError):
        netlink.NLMSGHDR.reading("nlmsg_size")


def test_derived_layouts_keep_size_and_offsets() -> None:
    row = sockdiag.INET_ROW_V4
    assert row.size == sockdiag.INET_MSG_V4.size
    assert row.offset("idiag_inode") == sockdiag.INET_MSG_V4.offset("idiag_inode") == 84
    assert row.fields == ("nlmsg_len", "nlmsg_type") + sockdiag_structs.INET_DIAG_MSG.fields
    assert netlink.NLMSGHDR.head("nlmsg_type").format == "=IH"


def test_the_device_map_record_is_the_kernel_struct() -> None:
    # backends/netlink/links.py builds DeviceMap(*RTNL_LINK_IFMAP.unpack_from(...)).
    assert link.RTNL_LINK_IFMAP.fields == DeviceMap._fields


# -- records: one declaration, built by field name ----------------------------------------------


class Misbuilt(NamedTuple):
    where: str
    why: str


def _record_of(node: ast.expr, aliases: Dict[str, str], records: Dict[str, type]) -> str:
    name = ast.unparse(node)
    name = aliases.get(name, name)
    return name if name in records else ""


def positional_builds(source: str, filename: str, records: Dict[str, type]) -> List[Misbuilt]:
    """Every build of a record in `source` that depends on its field order.

    Allowed: `R(name=value, ...)` (keywords only), `R(*LAYOUT.unpack_from(...))` (a record
    that is a kernel struct, checked by a test of its own), and `tuple.__new__(R, values_of(R,
    name=value, ...))` or `map(tuple.__new__, repeat(R), zip(*values_of(R, ...)))`, where
    values_of puts the values in R's order (nlstat/model/build.py)."""
    tree = ast.parse(source, filename)
    problems: List[Misbuilt] = []
    aliases: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
            node.targets[0], ast.Name
        ):
            text = ast.unparse(node.value)
            if text in records or text == "tuple.__new__":
                aliases[node.targets[0].id] = text

    def values_of_record(node: ast.expr) -> str:
        if (isinstance(node, ast.Call) and ast.unparse(node.func) == "values_of"
                and len(node.args) == 1 and all(k.arg for k in node.keywords)):
            return _record_of(node.args[0], aliases, records)
        return ""

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{filename}:{node.lineno}"
        callee = aliases.get(ast.unparse(node.func), ast.unparse(node.func))
        if callee == "tuple.__new__":
            record = _record_of(node.args[0], aliases, records) if node.args else ""
            if record and (len(node.args) != 2 or values_of_record(node.args[1]) != record):
                problems.append(Misbuilt(where, f"{record} built by position"))
        elif callee == "map" and node.args and aliases.get(
                ast.unparse(node.args[0]), ast.unparse(node.args[0])) == "tuple.__new__":
            repeat, columns = node.args[1], node.args[2]
            record = _record_of(repeat.args[0], aliases, records) if isinstance(
                repeat, ast.Call) and repeat.args else ""
            ok = (isinstance(columns, ast.Call) and ast.unparse(columns.func) == "zip"
                  and len(columns.args) == 1 and isinstance(columns.args[0], ast.Starred)
                  and values_of_record(columns.args[0].value) == record)
            if record and not ok:
                problems.append(Misbuilt(where, f"{record} built by position"))
        elif callee in records and node.args:
            if len(node.args) == 1 and isinstance(node.args[0], ast.Starred):
                continue  # a kernel struct as a record: test_the_device_map_record_...
            problems.append(Misbuilt(where, f"{callee} built by position"))
    return list(dict.fromkeys(problems))


def test_no_record_is_built_by_position() -> None:
    records = record_types()
    problems: List[Misbuilt] = []
    builds = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        builds += source.count("values_of(")
        problems += positional_builds(source, str(path.relative_to(PACKAGE)), records)
    assert builds >= 10  # the hot loops are all still seen
    assert problems == []


def test_a_positional_build_is_named() -> None:
    source = (
        "def f(a, b):\n"
        "    new = tuple.__new__\n"
        "    x = new(Route, (a, b))\n"
        "    y = Route(a, b)\n"
        "    z = list(map(tuple.__new__, repeat(Route), zip(a, b)))\n"
        "    w = tuple.__new__(Route, values_of(Route6, destination=a, data=b))\n"
        "    return Route(destination=a, data=b), new(Route, values_of(Route, data=b))\n"
    )
    problems = positional_builds(source, "f.py", record_types())
    assert sorted(p.where for p in problems) == ["f.py:3", "f.py:4", "f.py:5", "f.py:6"]


def specialised_functions() -> Iterator[Tuple[str, Any]]:
    """Every function of nlstat/ marked @specialised (imported: they are all in modules that
    import without side effects)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if "@specialised" not in path.read_text() or path.name == "build.py":
            continue
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = importlib.import_module(".".join(relative.parts))
        for value in vars(module).values():
            members = vars(value).values() if isinstance(value, type) else [value]
            for member in members:
                wrapped = getattr(member, "__wrapped__", None)
                if isinstance(member, FunctionType) and isinstance(wrapped, FunctionType) and (
                        wrapped.__module__ == module.__name__):
                    yield f"{module.__name__}.{wrapped.__qualname__}", wrapped


def test_every_specialised_function_builds_records_as_a_tuple_display() -> None:
    found = dict(specialised_functions())
    assert {name.rsplit(".", 1)[-1] for name in found} >= {
        "chunk", "decode_unix", "parse_inet", "parse_unix", "records", "_one"}
    for name, function in found.items():
        fast = specialise(function)
        assert fast is not None, name
        # values_of is gone, and the record is one BUILD_TUPLE (as a hand-written display).
        codes = [fast.__code__] + [c for c in fast.__code__.co_consts if hasattr(c, "co_names")]
        assert not any("values_of" in code.co_names for code in codes), name
        assert any(i.opname == "BUILD_TUPLE" for c in codes for i in dis.get_instructions(c))
        # and keeps the file's line numbers (tracebacks and coverage point at the source)
        assert fast.__code__.co_firstlineno >= function.__code__.co_firstlineno


def test_values_of_checks_the_names() -> None:
    assert values_of(Route, data=1, destination="d") == ("d", 1)
    with pytest.raises(TypeError, match="no field"):
        values_of(Route, destination="d", data=1, gateway="g")
    with pytest.raises(TypeError, match="no value for"):
        values_of(Route, destination="d")
    assert tuple_display(Route, {"data": "x", "destination": "y[1]"}) == "((y[1]), (x),)"
    with pytest.raises(TypeError, match="no value for"):
        tuple_display(Route, {"data": "x"})


def extended(record: Any, new_field: str, at: int) -> Any:
    """`record` as a newcomer would extend it: one more field (default 0) at `at`, all else
    as declared (every field from `at` on gets a default: namedtuple wants them last)."""
    fields = list(record._fields)
    fields.insert(at, new_field)
    defaults = dict(record._field_defaults, **{new_field: 0})
    return collections.namedtuple(
        "Grown", fields, defaults=[defaults.get(field, 0) for field in fields[at:]])


def _inet_message() -> bytes:
    values = {
        "idiag_family": socket.AF_INET, "idiag_state": 8, "idiag_timer": 2,
        "idiag_retrans": 5, "idiag_sport": socket.htons(1111),
        "idiag_dport": socket.htons(2222), "idiag_src": bytes([10, 0, 0, 1]) + bytes(12),
        "idiag_dst": bytes([10, 0, 0, 2]) + bytes(12), "idiag_if": 7,
        "idiag_cookie": 0x1122334455, "idiag_expires": 1234, "idiag_rqueue": 11,
        "idiag_wqueue": 12, "idiag_uid": 1000, "idiag_inode": 99999,
    }
    layout = sockdiag.INET_MSG_V6  # the 16-byte address form; V4 reads its first 4 bytes
    header = {"nlmsg_len": layout.size, "nlmsg_type": 20, "nlmsg_flags": 2, "nlmsg_seq": 1,
              "nlmsg_pid": 0}
    return layout.pack(*[dict(header, **values)[name] for name in layout.fields])


PROC_LINE = ("   0: 0100000A:0457 0200000A:08AE 08 0000000C:0000000B 02:000004D2 00000005  1000 "
             "        6 99999 1 0000000000000000 20 4 30 10 -1")


def test_a_field_added_to_the_record_declaration_is_all_it_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The decoders, specialised again with InetSocket declared another way (a field added
    in the middle), fill every field by name: the new one with its default."""
    from nlstat.backends.procfs import sockets as procfs_sockets

    # (the decoders as declared are specialised first, outside the patch)
    expected = InetDecoder("tcp").chunk(_inet_message())[0]._asdict()
    expected_proc = parse_inet([PROC_LINE], "tcp", socket.AF_INET)[0]._asdict()
    Grown = extended(InetSocket, "netns_cookie", 6)
    monkeypatch.setattr(sockdiag, "InetSocket", Grown)
    chunk = specialise(InetDecoder.chunk.__wrapped__)  # type: ignore[attr-defined]
    assert chunk is not None
    (record,) = chunk(InetDecoder("tcp"), _inet_message())
    assert type(record) is Grown
    assert record._asdict() == dict(expected, netns_cookie=0)

    monkeypatch.setattr(procfs_sockets, "InetSocket", Grown)
    parse = specialise(parse_inet.__wrapped__)  # type: ignore[attr-defined]
    assert parse is not None
    (grown,) = parse([PROC_LINE], "tcp", socket.AF_INET)
    assert grown._asdict() == dict(expected_proc, netns_cookie=0)


def test_unspecialised_builds_give_the_same_records() -> None:
    """Without its source (an install of .pyc files only) a function runs as written, with
    values_of called per record: slower, the same records."""
    from nlstat.model.sockets import UnixBatch

    message = _inet_message()
    slow_chunk = InetDecoder.chunk.__wrapped__  # type: ignore[attr-defined]
    assert slow_chunk(InetDecoder("tcp"), message) == InetDecoder("tcp").chunk(message)
    slow_parse = parse_inet.__wrapped__  # type: ignore[attr-defined]
    assert slow_parse([PROC_LINE], "tcp", 2) == parse_inet([PROC_LINE], "tcp", 2)
    unix = ["0000000000000000: 00000003 00000000 00010000 0005 01  4242 @x"]
    assert parse_unix.__wrapped__(unix) == parse_unix(unix)  # type: ignore[attr-defined]
    batch = UnixBatch.of(parse_unix(unix))
    assert UnixBatch.records.__wrapped__(batch) == batch.records()  # type: ignore[attr-defined]


def layout_unpacks(path: Path, module: ModuleType) -> List[Misbuilt]:
    """Every `targets = LAYOUT.unpack_from(...)` in a module (directly or through a local
    `unpack = LAYOUT.unpack_from`): as many targets as the layout gives values."""
    tree = ast.parse(path.read_text(), str(path))
    problems: List[Misbuilt] = []

    def layout_of(node: ast.expr) -> Optional[Layout]:
        if isinstance(node, ast.Attribute) and node.attr in ("unpack_from", "unpack"):
            value = getattr(module, ast.unparse(node.value), None)
            return value if isinstance(value, Layout) else None
        return None

    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        aliases: Dict[str, List[Layout]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                pairs = [(node.targets[0], node.value)]
                if isinstance(node.targets[0], ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(node.targets[0].elts, node.value.elts))
                for target, value in pairs:
                    found = layout_of(value)
                    if found is not None and isinstance(target, ast.Name):
                        aliases.setdefault(target.id, []).append(found)
        for node in ast.walk(function):
            if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple)
                    and isinstance(node.value, ast.Call)):
                continue
            func = node.value.func
            layouts = aliases.get(func.id, []) if isinstance(func, ast.Name) else []
            direct = layout_of(func)
            if direct is not None:
                layouts = [direct]
            for layout in layouts:
                targets = len(node.targets[0].elts)
                if targets != len(layout.fields):
                    problems.append(Misbuilt(
                        f"{path.name}:{node.lineno}",
                        f"{targets} names for {layout.name}'s {len(layout.fields)} values"))
    return list(dict.fromkeys(problems))


def test_every_unpack_names_every_value_of_its_layout() -> None:
    checked = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if ".unpack" not in path.read_text():
            continue  # nothing unpacked here (and __main__ is never imported)
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = importlib.import_module(".".join(relative.parts))
        if any(isinstance(value, Layout) for value in vars(module).values()):
            checked.add(path.stem)
            assert layout_unpacks(path, module) == []
    assert checked >= {"nlsocket", "sockdiag", "routes", "routes6", "links", "groups", "conntrack"}
    # and a layout that grew a member is named at the loop that unpacks it
    grown = sockdiag.INET_ROW_V4.then(Layout("extra", [("idiag_new", "I")]))
    module = ModuleType("grown")
    vars(module).update(vars(sockdiag), INET_ROW_V4=grown)
    problems = layout_unpacks(PACKAGE / "backends" / "netlink" / "sockdiag.py", module)
    assert [problem.why for problem in problems] == [
        "17 names for nlmsghdr+inet_diag_msg+extra's 18 values"]


# -- values land in their fields --------------------------------------------------------------


def test_inet_diag_fields_land_in_their_record_fields() -> None:
    (record,) = InetDecoder("tcp").chunk(_inet_message())
    assert record._asdict() == {
        "protocol": "tcp", "family": socket.AF_INET, "state": 8, "local_address": "10.0.0.1",
        "local_port": 1111, "remote_address": "10.0.0.2", "remote_port": 2222, "recv_q": 11,
        "send_q": 12, "uid": 1000, "inode": 99999, "timer": 2, "timer_ms": 1234,
        "retransmits": 0, "probes": 5, "cookie": 0x1122334455, "interface": 7, "cgroup_id": 0,
    }


def test_unix_diag_fields_land_in_their_record_fields() -> None:
    layout = sockdiag.UNIX_MSG
    values = {"nlmsg_len": layout.size, "nlmsg_type": 20, "nlmsg_flags": 2, "nlmsg_seq": 1,
              "nlmsg_pid": 0, "udiag_family": socket.AF_UNIX, "udiag_type": 5,
              "udiag_state": 10, "udiag_ino": 4242, "udiag_cookie": 77}
    message = layout.pack(*[values[name] for name in layout.fields])
    (record,) = decode_unix([message])
    assert record == UnixSocket(type=5, socket_state=1, flags=0x10000, inode=4242, path="",
                                refcnt=None, protocol=0, state=10, peer_inode=0, cookie=77)


def test_proc_fields_land_in_their_record_fields() -> None:
    line = ("   0: 0100000A:0457 0200000A:08AE 08 0000000C:0000000B 02:000004D2 00000005  1000 "
            "        6 99999 1 0000000000000000 20 4 30 10 -1")
    (record,) = parse_inet([line], "tcp", socket.AF_INET)
    assert record._asdict() == {
        "protocol": "tcp", "family": socket.AF_INET, "state": 8, "local_address": "10.0.0.1",
        "local_port": 1111, "remote_address": "10.0.0.2", "remote_port": 2222, "recv_q": 11,
        "send_q": 12, "uid": 1000, "inode": 99999, "timer": 2, "timer_ms": 12340,
        "retransmits": 5, "probes": 6, "cookie": 0, "interface": 0, "cgroup_id": 0,
    }
    (unix,) = parse_unix(["0000000000000000: 00000003 00000000 00010000 0005 01  4242 @x"])
    assert unix == UnixSocket(type=5, socket_state=1, flags=0x10000, inode=4242, path="@x",
                              refcnt=3, protocol=0, state=0, peer_inode=0, cookie=0)
