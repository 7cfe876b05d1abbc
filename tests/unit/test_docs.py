"""The documents say what the code does: exit statuses, and no citation of a missing spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Set

from nlstat.errors import ExitStatus, statuses

REPO = Path(__file__).resolve().parents[2]


def _man_statuses() -> Set[int]:
    page = (REPO / "docs" / "nlstat.1").read_text()
    section = page.split(".SH EXIT STATUS", 1)[1].split("\n.SH ", 1)[0]
    return {int(n) for n in re.findall(r"^\.TP\n\.B (\d+)$", section, re.M)}


def _compat_statuses() -> Set[int]:
    text = (REPO / "docs" / "compat.md").read_text()
    section = text.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", section, re.M)
    assert all(getattr(ExitStatus, name) == int(number) for number, name in rows), rows
    return {int(number) for number, _ in rows}


def test_every_exit_status_is_in_the_man_page_and_compat() -> None:
    values = set(statuses().values())
    assert values == {0, 1, 3, 70, 130, 141, 255}
    assert len(values) == len(statuses())  # one name per status
    assert _man_statuses() == values
    assert _compat_statuses() == values


def test_no_status_is_a_bare_number_in_the_modes() -> None:
    """Statuses are ExitStatus names in app and the modes ("return 0" would hide a meaning)."""
    pattern = re.compile(r"^\s*(return|raise Exit\(|status =)\s*(0|1|2|3|70|255)\b(?!\.)")
    for path in [REPO / "nlstat" / "app.py", REPO / "nlstat" / "compare.py",
                 *sorted((REPO / "nlstat" / "modes").glob("*.py"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.name}:{number}: {line.strip()}"


def test_no_citation_of_a_spec_the_repository_lacks() -> None:
    """Comments cite netstat.c's functions or docs/compat.md; "spec" and a section sign
    pointed at a document that is not in the repository."""
    paths = [*REPO.glob("nlstat/**/*.py"), *REPO.glob("tests/**/*.py"),
             *REPO.glob("benchmarks/**/*.py"), *REPO.glob("docs/*"), REPO / "README.md"]
    cited = [f"{path.relative_to(REPO)}:{number}"
             for path in paths if path.is_file()
             for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
             if "\u00a7" in line]
    assert cited == []
