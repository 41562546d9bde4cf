"""The documents tell the truth about the repository: every `make <target>` and every
`python -m <module> [command]` they show exists, every repository path they link to or
name exists, and every number in docs/deployment.md's sizing table matches the report
field it names (when that report has been generated) or the arithmetic it shows."""

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import pathspec
import pytest

from core.names import PROJECT_ROOT
from core.settings import Settings
from riskbento.__main__ import main as riskbento_cli

DEPLOYMENT = PROJECT_ROOT / "docs" / "deployment.md"
README = PROJECT_ROOT / "README.md"
DOCS = (DEPLOYMENT, README)
MAKEFILE = PROJECT_ROOT / "Makefile"
ALERTS = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
SIZING_HEADER = "| id | what | value | source (file, field) |"

FENCE = re.compile(r"^\s*```")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+(?![\w.-]*=)([A-Za-z][\w.-]*)")
PYTHON_M = re.compile(r"python[\d.]*\s+-m\s+([A-Za-z_][\w.]*)(?:\s+([a-z][\w-]*))?")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"^\.?[\w-]+(?:\.[\w-]+)*(?:/[\w.-]+)+/?$")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
ROW_ID = re.compile(r"^S\d+$")


def _rel(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def code_snippets(text: str) -> list[str]:
    """Command text: fenced lines without their shell comments, and every inline code
    span (also those inside a fenced line's comment)."""
    snippets: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            snippets.append(re.split(r"(?:^|\s)#", line, maxsplit=1)[0])
        snippets += INLINE_CODE.findall(line)
    return snippets


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", MAKEFILE.read_text(), re.MULTILINE))


def cli_commands(capsys: pytest.CaptureFixture[str]) -> set[str]:
    with pytest.raises(SystemExit):
        riskbento_cli(["--help"])
    usage = capsys.readouterr().out
    found = re.search(r"\{([\w,-]+)\}", usage)
    assert found, f"no subcommand list in `python -m riskbento --help`:\n{usage}"
    return set(found.group(1).split(","))


def module_exists(module: str) -> bool:
    """`python -m module` can run it: a file or package of this repository, or an installed
    package (pip, pytest, ...)."""
    parts = module.split(".")
    local = PROJECT_ROOT.joinpath(*parts)
    if local.with_suffix(".py").is_file() or (local / "__main__.py").is_file():
        return True
    if (PROJECT_ROOT / parts[0]).exists():
        return False  # one of ours, but not that file
    import importlib.util

    return importlib.util.find_spec(parts[0]) is not None


def generated(path: str) -> bool:
    """A path git ignores (data, reports, outputs, ...): absent from a fresh clone. By git's
    own rules (pathspec), so a re-included path (`!reports/dashboard/*.png`) is not."""
    lines = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines).match_file(path)


# --- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_make_target_shown_exists(doc: Path):
    targets = make_targets()
    shown = {t for s in code_snippets(doc.read_text()) for t in MAKE.findall(s)}
    assert shown, f"{_rel(doc)} shows no `make` command: the parser found nothing to check"
    missing = sorted(shown - targets)
    assert not missing, f"{_rel(doc)} shows make targets the Makefile lacks: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_python_m_command_shown_exists(doc: Path, capsys: pytest.CaptureFixture[str]):
    commands = cli_commands(capsys)
    problems = []
    for snippet in code_snippets(doc.read_text()):
        for module, command in PYTHON_M.findall(snippet):
            if not module_exists(module):
                problems.append(f"`python -m {module}`: no such module")
            elif module == "riskbento" and command and command not in commands:
                problems.append(
                    f"`python -m riskbento {command}`: expected one of {sorted(commands)}"
                )
    assert not problems, f"{_rel(doc)}:\n" + "\n".join(problems)


def test_deployment_doc_shows_riskbento_commands():
    shown = [m for s in code_snippets(DEPLOYMENT.read_text()) for m in PYTHON_M.findall(s)]
    assert ("riskbento", "score-file") in shown


# --- paths -------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_link_resolves(doc: Path):
    text = doc.read_text()
    anchors = {_slug(h) for h in re.findall(r"^#+\s+(.*)$", text, re.MULTILINE)}
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, fragment = target.partition("#")
        if not path:
            if fragment not in anchors:
                problems.append(f"#{fragment}: no such heading (headings: {sorted(anchors)})")
            continue
        resolved = (doc.parent / path).resolve()
        if not resolved.is_relative_to(PROJECT_ROOT):
            problems.append(f"{target}: outside the repository")
        elif generated(_rel(resolved)):
            problems.append(f"{target}: git-ignored, so absent from a fresh clone")
        elif not resolved.exists():
            problems.append(f"{target}: {resolved} does not exist")
    assert not problems, f"{_rel(doc)} links:\n" + "\n".join(problems)


def test_every_repository_path_named_in_the_deployment_doc_exists():
    top = {p.name for p in PROJECT_ROOT.iterdir()}
    named = {s for s in INLINE_CODE.findall(DEPLOYMENT.read_text()) if REPO_PATH.match(s)}
    checked = {p for p in named if p.split("/")[0] in top and not generated(p)}
    assert len(checked) >= 10, f"expected the doc to name repository files, found {checked}"
    missing = sorted(p for p in checked if not (PROJECT_ROOT / p).exists())
    assert not missing, f"docs/deployment.md names paths that do not exist: {missing}"


# --- names the doc shares with the code --------------------------------------------------


def test_every_setting_named_in_the_deployment_doc_exists():
    known = {f"RISKBENTO_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"\bRISKBENTO_[A-Z_]+\b", DEPLOYMENT.read_text()))
    assert named, "the doc names no RISKBENTO_* setting"
    assert not named - known, f"not settings in core/settings.py: {sorted(named - known)}"


def test_every_alert_named_in_the_deployment_doc_exists():
    alerts = set(re.findall(r"^\s*- alert:\s*(\w+)", ALERTS.read_text(), re.MULTILINE))
    named = set(re.findall(r"\bRiskbento[A-Z]\w+\b", DEPLOYMENT.read_text()))
    assert named, "the doc names no alert"
    assert not named - alerts, f"not alerts in {_rel(ALERTS)}: {sorted(named - alerts)}"
    assert not alerts - named, f"alerts the doc does not explain: {sorted(alerts - named)}"


# --- the sizing table --------------------------------------------------------------------


def sizing_rows() -> dict[str, dict[str, str]]:
    lines = DEPLOYMENT.read_text().splitlines()
    start = lines.index(SIZING_HEADER)  # ValueError names the missing header
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 4, f"sizing row with {len(cells)} cells, expected 4: {line}"
        row_id, what, value, source = cells
        assert ROW_ID.match(row_id), f"sizing row id {row_id!r}: expected S<number>"
        assert row_id not in rows, f"sizing row id {row_id} used twice"
        rows[row_id] = {"what": what, "value": value, "source": source}
    return rows


ROWS = sizing_rows()


def shown_number(value: str) -> tuple[float, int]:
    """The first number of a value cell and its decimal places."""
    found = NUMBER.search(value)
    assert found, f"no number in {value!r}"
    text = found.group().replace(",", "")
    decimals = len(text.partition(".")[2])
    return float(text), decimals


def resolve_field(data: Any, field: str) -> Any:
    """`a.b[0].c` or `a[key=value&key2=value2].c`: list items picked by index or by the
    unique item whose fields (as text) equal the values."""
    for part in field.split("."):
        name, *selectors = re.findall(r"^[^\[]*|\[[^\]]*\]", part)
        if name:
            assert isinstance(data, dict) and name in data, f"no key {name!r} in {field}"
            data = data[name]
        for selector in selectors:
            inner = selector[1:-1]
            if inner.isdigit():
                data = data[int(inner)]
                continue
            wanted = dict(cond.split("=", 1) for cond in inner.split("&"))
            matches = [
                item for item in data if all(str(item.get(k)) == v for k, v in wanted.items())
            ]
            assert len(matches) == 1, f"{field}: {len(matches)} items match [{inner}], expected 1"
            data = matches[0]
    return data


def evaluate(formula: str) -> float:
    """`= S5 / S2`-style arithmetic over the shown values of other rows."""
    allowed = (ast.Expression, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Constant)

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Name):
            assert node.id in ROWS, f"{formula}: no sizing row {node.id}"
            return shown_number(ROWS[node.id]["value"])[0]
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ceil":
            return math.ceil(value(node.args[0]))
        assert isinstance(node, allowed), f"{formula}: only + - * / ceil() and row ids"
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        ops = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__}
        left, right = float(value(node.left)), float(value(node.right))
        if isinstance(node.op, ast.Div):
            return left / right
        return ops[type(node.op)](left, right)

    return value(ast.parse(formula, mode="eval"))


def agrees(actual: float, value: str) -> bool:
    shown, decimals = shown_number(value)
    return abs(actual - shown) <= 0.5 * 10**-decimals + 1e-9 * abs(shown)


def test_sizing_table_has_the_numbers_the_prose_cites():
    text = DEPLOYMENT.read_text()
    cited = set(re.findall(r"\bS\d+\b", text))
    assert len(ROWS) >= 10
    assert not cited - set(ROWS), f"cited but not in the table: {sorted(cited - set(ROWS))}"


@pytest.mark.parametrize("row_id", sorted(ROWS, key=lambda r: int(r[1:])))
def test_sizing_number_matches_its_source(row_id: str):
    row = ROWS[row_id]
    source, value = row["source"], row["value"]
    if source.startswith("="):
        got = evaluate(source[1:].strip())
        assert agrees(got, value), f"{row_id} shows {value}, but {source} gives {got:.6g}"
        return
    spans = INLINE_CODE.findall(source)
    assert spans, f"{row_id}: source {source!r} names no file"
    path = PROJECT_ROOT / spans[0]
    if path.suffix == ".json":
        assert len(spans) == 2, f"{row_id}: a JSON source needs `file` `field`, got {source!r}"
        if not path.exists():
            assert generated(spans[0]), f"{row_id}: {spans[0]} is tracked but missing"
            pytest.skip(f"{spans[0]} not generated here (make loadtest / make bench)")
        got = resolve_field(json.loads(path.read_text()), spans[1])
        assert agrees(float(got), value), (
            f"{row_id} ({row['what']}) shows {value}, but {spans[0]} {spans[1]} is {got}: "
            "update the sizing table"
        )
    else:
        assert path.is_file(), f"{row_id}: {spans[0]} does not exist"
        assert value in path.read_text(), f"{row_id}: {value!r} does not appear in {spans[0]}"
