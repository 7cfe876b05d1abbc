"""Kernel struct layouts and the records they feed agree, field by field (issue 13.1).

Three checks:

* every Layout's names agree with its compiled format (count, order, sizes, offsets), and the
  hot decoders' formats are the ones the C structs give;
* every record built by position in nlstat/ (the hot loops' `tuple.__new__`, and positional
  calls of the records those loops build) names each value after the record field it fills,
  in the record's order and number: a field added to a record without the builders following
  is a failure here, not a misaligned record (see `record_builds`). Records built only on
  cold paths are built by keywords or by their class, which checks the count itself;
* decoding a message whose every field holds a distinct value puts each value in the record
  field it belongs to (netlink and /proc alike).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import socket
import struct
from pathlib import Path
from types import ModuleType
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
from nlstat.model.links import DeviceMap
from nlstat.model.sockets import UnixSocket

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


# -- records built by position ----------------------------------------------------------------


# Records the hot loops build with tuple.__new__ (sockets, /proc/net/unix kinds, routes).
HOT_RECORDS = ("InetSocket", "UnixSocket", "UnixKind", "Route", "Route6")


class Misbuilt(NamedTuple):
    where: str
    why: str


def _names_field(node: ast.expr, field: str, default: Any, has_default: bool) -> bool:
    """Does this value expression name the record field it fills?

    A name or attribute named after the field (or starting with it: `destination_texts`),
    or a conversion of one (a call, subscript or arithmetic with such an operand); a constant
    only where it is the field's default."""
    if isinstance(node, ast.Name):
        return node.id == field or node.id.startswith(field)
    if isinstance(node, ast.Attribute):
        return node.attr == field
    if isinstance(node, ast.Constant):
        return has_default and node.value == default
    if isinstance(node, ast.Subscript):
        return any(_names_field(n, field, default, False) for n in (node.value, node.slice))
    if isinstance(node, ast.Call):
        return any(_names_field(n, field, default, False) for n in node.args)
    if isinstance(node, ast.BinOp):
        return any(_names_field(n, field, default, False) for n in (node.left, node.right))
    if isinstance(node, ast.IfExp):
        return _names_field(node.body, field, default, has_default)
    return False


def _check_values(
    values: List[ast.expr], record: type, exact: bool, where: str
) -> List[Misbuilt]:
    fields: Tuple[str, ...] = record._fields  # type: ignore[attr-defined]
    defaults: Dict[str, Any] = record._field_defaults  # type: ignore[attr-defined]
    problems = []
    if (len(values) != len(fields)) if exact else (len(values) > len(fields)):
        problems.append(Misbuilt(where, f"{len(values)} values for {record.__name__}'s "
                                        f"{len(fields)} fields {fields}"))
        return problems
    for value, field in zip(values, fields):
        if not _names_field(value, field, defaults.get(field), field in defaults):
            problems.append(Misbuilt(where, f"{record.__name__}.{field} is filled by "
                                            f"{ast.unparse(value)!r}"))
    return problems


def record_builds(source: str, filename: str, records: Dict[str, type]) -> List[Misbuilt]:
    """Every positional build of a record in `source`, checked against the record's fields.

    Builds are `tuple.__new__(R, (...))` (through a local alias of tuple.__new__ or of R),
    `map(tuple.__new__, repeat(R), zip(...))`, and calls of R with positional arguments, for
    every R built with tuple.__new__ somewhere in `source` or in HOT_RECORDS. tuple.__new__
    takes no defaults, so its value count must be the record's exactly."""
    tree = ast.parse(source, filename)
    problems: List[Misbuilt] = []
    hot = set(HOT_RECORDS)
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.Module)):
            continue
        aliases: Dict[str, str] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name
            ):
                text = ast.unparse(node.value)
                if text in records or text == "tuple.__new__":
                    aliases[node.targets[0].id] = text
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            where = f"{filename}:{node.lineno}"
            callee = ast.unparse(node.func)
            callee = aliases.get(callee, callee)
            if callee == "tuple.__new__" and len(node.args) == 2:
                record = records.get(aliases.get(ast.unparse(node.args[0]),
                                                 ast.unparse(node.args[0])))
                if record is not None:
                    if not isinstance(node.args[1], ast.Tuple):
                        problems.append(Misbuilt(where, "values not written out"))
                    else:
                        problems += _check_values(node.args[1].elts, record, True, where)
            elif callee == "map" and len(node.args) == 3:
                first, second, third = node.args
                if aliases.get(ast.unparse(first), ast.unparse(first)) != "tuple.__new__":
                    continue
                if not (isinstance(second, ast.Call) and ast.unparse(second.func) == "repeat"):
                    continue
                name = ast.unparse(second.args[0])
                record = records.get(aliases.get(name, name))
                if record is None:
                    continue
                if not (isinstance(third, ast.Call) and ast.unparse(third.func) == "zip"):
                    problems.append(Misbuilt(where, "values not written out"))
                else:
                    problems += _check_values(third.args, record, True, where)
            elif callee in hot and callee in records and function is not tree and node.args:
                if any(isinstance(arg, ast.Starred) for arg in node.args):
                    continue  # a struct unpacked into a record: checked by a test of its own
                problems += _check_values(node.args, records[callee], False, where)
    # A call inside a function is met from the module too.
    return list(dict.fromkeys(problems))


def test_every_record_built_by_position_names_its_fields() -> None:
    records = record_types()
    problems: List[Misbuilt] = []
    builds = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        builds += source.count("tuple.__new__")
        problems += record_builds(source, str(path.relative_to(PACKAGE)), records)
    assert builds >= 7  # the hot loops are all still seen
    assert problems == []


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


class Grown(NamedTuple):
    """InetSocket as a newcomer would extend it: one more field at the end."""

    protocol: str
    family: int
    state: int
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    recv_q: int
    send_q: int
    uid: int
    inode: int
    timer: int = 0
    timer_ms: int = 0
    retransmits: int = 0
    probes: int = 0
    cookie: int = 0
    interface: int = 0
    netns_cookie: int = 0


def test_a_new_record_field_is_a_loud_failure_or_a_whole_record() -> None:
    """Adding a field to a record by editing its one declaration: every hot loop that builds
    it by position is named here (value count and names), and a build by keywords or by the
    record's own constructor gives a whole record with the new field's default."""
    records = dict(record_types(), InetSocket=Grown)
    path = PACKAGE / "backends" / "netlink" / "sockdiag.py"
    problems = record_builds(path.read_text(), "sockdiag.py", records)
    assert problems and all("17 values for Grown's 18 fields" in p.why for p in problems)
    path = PACKAGE / "backends" / "procfs" / "sockets.py"
    assert record_builds(path.read_text(), "sockets.py", records)

    # A builder that swapped two values is named too.
    swapped = (
        "def f(protocol, family, state, local_address, local_port, remote_address,\n"
        "      remote_port, recv_q, send_q, uid, inode):\n"
        "    return tuple.__new__(InetSocket, (protocol, family, state, remote_address,\n"
        "        local_port, local_address, remote_port, recv_q, send_q, uid, inode,\n"
        "        0, 0, 0, 0, 0, 0))\n"
    )
    problems = record_builds(swapped, "swapped.py", record_types())
    assert [p.why for p in problems] == [
        "InetSocket.local_address is filled by 'remote_address'",
        "InetSocket.remote_address is filled by 'local_address'",
    ]
    grown = Grown(protocol="tcp", family=2, state=1, local_address="a", local_port=1,
                  remote_address="b", remote_port=2, recv_q=0, send_q=0, uid=0, inode=3)
    assert grown.netns_cookie == 0 and len(grown) == len(Grown._fields)


# -- values land in their fields --------------------------------------------------------------


def test_inet_diag_fields_land_in_their_record_fields() -> None:
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
    message = layout.pack(*[dict(header, **values)[name] for name in layout.fields])
    (record,) = InetDecoder("tcp").chunk(message)
    assert record._asdict() == {
        "protocol": "tcp", "family": socket.AF_INET, "state": 8, "local_address": "10.0.0.1",
        "local_port": 1111, "remote_address": "10.0.0.2", "remote_port": 2222, "recv_q": 11,
        "send_q": 12, "uid": 1000, "inode": 99999, "timer": 2, "timer_ms": 1234,
        "retransmits": 0, "probes": 5, "cookie": 0x1122334455, "interface": 7,
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
        "retransmits": 5, "probes": 6, "cookie": 0, "interface": 0,
    }
    (unix,) = parse_unix(["0000000000000000: 00000003 00000000 00010000 0005 01  4242 @x"])
    assert unix == UnixSocket(type=5, socket_state=1, flags=0x10000, inode=4242, path="@x",
                              refcnt=3, protocol=0, state=0, peer_inode=0, cookie=0)
