"""Every command in README.md and docs/*.md runs from where it says to run it (issue 17, item 11).

Each fenced ```sh / ```bash / ```shell block, and each inline code span in the prose that is a command (three words
or more, starting after any VAR=value with `make `, `pulumi `, `python -m `, `.venv/bin/` or `cd `: `pulumi up`
alone names an operation, `pulumi up --stack gcp` is a command), is read as a reader would paste
it into a shell at the repository root: `cd` moves the block's working directory (a `( … )` subshell's `cd` ends
with the subshell), and then
- `make TARGET…` needs a Makefile in that directory (or in `make -C DIR`) that defines each target;
- `python -m pkg.mod` needs the module: a file under that directory (how `python -m` finds `bench`), a package
  this project installs (pyproject's `packages.find`), or an installed distribution (`lm_eval`, `pip`);
- `.venv/bin/NAME` needs NAME to be python, a script pyproject declares, or one installed beside this interpreter;
- `pulumi SUBCOMMAND` (other than login/whoami/version/…) needs a Pulumi.yaml in its directory or in `-C DIR`
  ("-C, --cwd string: Run pulumi as if it had been started in another directory",
  https://www.pulumi.com/docs/iac/cli/commands/pulumi/), and its `--policy-pack`/`--policy-pack-config` paths are
  relative to that directory;
- every argument that looks like a repository path (`functions/gcp/main.py`, `policy/public.json`) exists when its
  first part exists in that directory, and a path that only exists from the repository root is reported when the
  block has moved elsewhere. Generated directories (.gitignore: artifacts/, dist/, …) are not required to exist.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCE = re.compile(r"^```(sh|bash|shell)\s*$")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
INLINE_COMMAND = re.compile(r"^(\w+=\S+ )*(make |pulumi |python3? -m |\.venv/bin/|cd )")
SEPARATORS = {"&&", "||", "|", ";"}
SHELL_KEYWORDS = {"do", "done", "then", "else", "elif", "fi", "{", "}", "!", "time"}
PULUMI_ANYWHERE = {"login", "logout", "whoami", "version", "about", "plugin", "--version", "--help"}
PATH_LIKE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.\-/]*$")
PATH_SUFFIXES = (".py", ".json", ".yaml", ".yml", ".md", ".txt", ".toml", ".cfg", ".sh")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
INSTALLED_PACKAGES = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
DECLARED_SCRIPTS = set(PYPROJECT["project"]["scripts"])
GENERATED = {
    line.strip().strip("/")
    for line in (ROOT / ".gitignore").read_text().splitlines()
    if line.strip() and not line.startswith("#") and "*" not in line
}


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence
    text: str


def shell_blocks(document: Path) -> list[Block]:
    """The fenced shell blocks, then each inline command of the prose as a block of its own (line: its line)."""
    blocks, inline, lines, start, fenced = [], [], None, 0, False
    for number, line in enumerate(document.read_text().splitlines(), 1):
        if lines is None and SHELL_FENCE.match(line):
            lines, start = [], number
        elif lines is not None and line.startswith("```"):
            blocks.append(Block(document, start, "\n".join(lines)))
            lines = None
        elif lines is not None:
            lines.append(line)
        elif line.startswith("```"):
            fenced = not fenced  # another language's block (json, yaml): not prose
        elif not fenced:
            spans = (span.strip() for span in INLINE_CODE.findall(line))
            commands = [span for span in spans if INLINE_COMMAND.match(span) and len(span.split()) >= 3]
            inline += [Block(document, number - 1, span) for span in commands]
    return blocks + inline


def logical_lines(text: str) -> list[tuple[int, list[str]]]:
    """(offset of the first physical line, shell words) for each command line: continuations joined, a quoted
    string spanning lines kept whole, comments dropped."""
    result, pending, first = [], "", 0
    for offset, line in enumerate(text.splitlines(), 1):
        if not pending:
            first = offset
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the string goes on on the next line
            pending += "\n"
            continue
        result.append((first, words))
        pending = ""
    return result


def simple_commands(words: list[str]) -> list[list[str]]:
    """Split one command line at && || | ; into simple commands."""
    pieces, current = [], []
    for word in words:
        if word in SEPARATORS:
            pieces.append(current)
            current = []
        elif word.endswith(";"):
            current.append(word[:-1])
            pieces.append(current)
            current = []
        else:
            current.append(word)
    pieces.append(current)
    return [p for p in pieces if p]


class Checker:
    def __init__(self, block: Block):
        self.block = block
        self.findings: list[str] = []
        self.cwd = ROOT
        self.saved: list[Path] = []

    def report(self, offset: int, message: str) -> None:
        where = f"{self.block.document.relative_to(ROOT)}:{self.block.line + offset}"
        self.findings.append(f"{where}: {message} (run from {self.where()})")

    def where(self) -> str:
        if self.cwd == ROOT:
            return "the repository root"
        return f"{self.cwd.relative_to(ROOT)}/" if self.cwd.is_relative_to(ROOT) else str(self.cwd)

    def run(self) -> list[str]:
        for offset, words in logical_lines(self.block.text):
            for command in simple_commands(words):
                self.command(offset, command)
        return self.findings

    def command(self, offset: int, words: list[str]) -> None:
        closes = 0
        while words and words[0].startswith("("):
            self.saved.append(self.cwd)
            words = [words[0][1:], *words[1:]] if words[0] != "(" else words[1:]
        while words and words[-1].endswith(")") and not words[-1].endswith("$()"):
            closes += 1
            words = [*words[:-1], words[-1][:-1]] if words[-1] != ")" else words[:-1]
        words = [w for w in words if w]
        while words and (re.match(r"^\w+=", words[0]) or words[0] in SHELL_KEYWORDS):
            words = words[1:]
        if words and not words[0].endswith("()"):
            self.check(offset, words[0], words[1:])
        for _ in range(closes):
            if self.saved:
                self.cwd = self.saved.pop()

    def check(self, offset: int, name: str, args: list[str]) -> None:
        if name == "cd":
            self.cd(offset, args)
            return
        if name == "make":
            self.make(offset, args)
        elif name.endswith("/python") or re.fullmatch(r"python3?(\.\d+)?", name):
            self.python(offset, args)
        elif name.startswith(".venv/bin/"):
            self.venv_script(offset, name)
        elif name == "pulumi":
            self.pulumi(offset, args)
            return
        self.paths(offset, args, self.cwd)

    def cd(self, offset: int, args: list[str]) -> None:
        if not args or any(c in args[0] for c in "$<~"):
            return
        target = (self.cwd / args[0]).resolve()
        if not target.is_dir():
            self.report(offset, f"cd {args[0]}: no such directory")
        else:
            self.cwd = target

    def make(self, offset: int, args: list[str]) -> None:
        directory = self.cwd
        if "-C" in args:
            directory = self.cwd / args[args.index("-C") + 1]
        makefile = directory / "Makefile"
        if not makefile.is_file():
            self.report(offset, f"make {' '.join(args)}: no Makefile in {directory.relative_to(ROOT)}/")
            return
        defined = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile.read_text(), re.M))
        skip_next = False
        for arg in args:
            if skip_next:
                skip_next = False
            elif arg == "-C":
                skip_next = True
            elif not arg.startswith("-") and "=" not in arg:
                for target in arg.split("|"):  # `make deploy|destroy` in prose-like blocks: each must exist
                    if target not in defined:
                        self.report(offset, f"make {target}: no such target in {makefile.relative_to(ROOT)}")

    def python(self, offset: int, args: list[str]) -> None:
        if "-m" not in args[:2] or args.index("-m") + 1 >= len(args):
            return
        module = args[args.index("-m") + 1]
        if not self.module_exists(module):
            self.report(offset, f"python -m {module}: no such module")

    def module_exists(self, module: str) -> bool:
        parts = module.split(".")
        for base in (self.cwd, ROOT if parts[0] in INSTALLED_PACKAGES else None):
            if base is None:
                continue
            stem = base.joinpath(*parts)
            if stem.with_suffix(".py").is_file() or (stem / "__main__.py").is_file():
                return True
        repo_top = (self.cwd / parts[0]).exists() or (ROOT / parts[0]).exists()
        return not repo_top and importlib.util.find_spec(parts[0]) is not None

    def venv_script(self, offset: int, name: str) -> None:
        script = name.removeprefix(".venv/bin/")
        if not (self.cwd == ROOT or (self.cwd / ".venv").exists()):
            self.report(offset, f"{name}: .venv/ is at the repository root")
        elif not (
            script.startswith("python") or script in DECLARED_SCRIPTS or (Path(sys.executable).parent / script).exists()
        ):
            self.report(offset, f"{name}: not a script this project installs")

    def pulumi(self, offset: int, args: list[str]) -> None:
        directory, rest, i = self.cwd, [], 0
        while i < len(args):
            if args[i] in ("-C", "--cwd"):
                directory = self.cwd / args[i + 1]
                i += 2
                continue
            if args[i].startswith("--cwd="):
                directory = self.cwd / args[i].split("=", 1)[1]
            else:
                rest.append(args[i])
            i += 1
        subcommand = next((a for a in rest if not a.startswith("-")), "")
        if subcommand not in PULUMI_ANYWHERE and not (directory / "Pulumi.yaml").is_file():
            self.report(offset, f"pulumi {subcommand}: no Pulumi.yaml in {directory.relative_to(ROOT)}/ (use -C infra)")
        for flag in ("--policy-pack", "--policy-pack-config"):
            for i, arg in enumerate(rest[:-1]):
                value = rest[i + 1]
                if arg == flag and not any(c in value for c in "$<[") and not (directory / value).exists():
                    self.report(offset, f"pulumi {flag} {value}: no such path in {directory.relative_to(ROOT)}/")
        self.paths(offset, rest, directory)

    def paths(self, offset: int, args: list[str], directory: Path) -> None:
        for arg in args:
            value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
            if not PATH_LIKE.match(value) or not ("/" in value or value.endswith(PATH_SUFFIXES)):
                continue
            first = value.split("/")[0]
            if first in GENERATED or first in (".", ".."):
                continue
            if (directory / first).exists():
                if not (directory / value).exists():
                    self.report(offset, f"{value}: no such file or directory")
            elif directory != ROOT and (ROOT / first).exists() and not (ROOT / value).is_relative_to(directory):
                self.report(offset, f"{value}: a path from the repository root")


def findings_of(document: Path) -> list[str]:
    return [finding for block in shell_blocks(document) for finding in Checker(block).run()]


def check_text(text: str) -> list[str]:
    """The checker run on one block of text, as if it were README's (for the tests of the checker itself)."""
    return Checker(Block(ROOT / "README.md", 0, text)).run()


# docs/ci.md is being fixed with the rest of issue 17 (the infra work); until that lands its findings are expected.
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_shell_command_in_the_docs_runs_from_where_it_says(document):
    assert shell_blocks(document) or document.name != "README.md", "README has no shell block"
    assert findings_of(document) == []


# -- the checker itself: it must catch what issue 17 item 11 found, and pass what is right ------------------------
def test_make_after_cd_infra_is_caught_because_infra_has_no_makefile():
    assert check_text("cd infra\nmake preflight STACK=gcp") == [
        "README.md:2: make preflight STACK=gcp: no Makefile in infra/ (run from infra/)"
    ]


def test_pulumi_with_a_policy_pack_from_the_root_is_caught():
    assert check_text("pulumi up --stack gcp --policy-pack infra/policy") == [
        "README.md:1: pulumi up: no Pulumi.yaml in ./ (use -C infra) (run from the repository root)"
    ]
    assert check_text("pulumi -C infra up --stack gcp --policy-pack policy") == []
    assert check_text("cd infra\npulumi up --stack gcp --policy-pack policy") == []
    assert any(
        "--policy-pack infra/policy" in f for f in check_text("cd infra && pulumi up --policy-pack infra/policy")
    )


def test_unknown_targets_modules_scripts_and_paths_are_caught():
    assert any("make nosuchtarget" in f for f in check_text("make nosuchtarget"))
    assert any("python -m bench.nosuch" in f for f in check_text(".venv/bin/python -m bench.nosuch --quick"))
    assert any("not a script" in f for f in check_text(".venv/bin/nosuchtool --help"))
    assert any(
        "functions/gcp/nosuch.py" in f for f in check_text("functions-framework --source functions/gcp/nosuch.py")
    )
    assert any("a path from the repository root" in f for f in check_text("cd infra\ncat train/data/corpus.txt"))


def test_right_commands_pass_and_a_subshell_cd_ends_with_it():
    assert (
        check_text(
            "make serve   # a comment\n"
            ".venv/bin/python -m train --corpus train/data/corpus.txt\n"
            ".venv/bin/tinyllm generate 'x' \\\n  --seed 1\n"
            "(cd infra && pulumi stack ls)\n"
            "make test\n"
            "python -m infra.preflight gcp && ls artifacts/model/\n"
        )
        == []
    )


# -- links between the pages ---------------------------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces → '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.S | re.M)
    return {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(document):
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading in {linked.relative_to(ROOT)}")
    assert broken == []


def test_the_anchor_rule_matches_githubs_on_this_repositorys_headings():
    assert {"target-missed-and-why", "package-size-per-preset", "what-1m-requests-cost"} <= anchors(
        ROOT / "docs" / "benchmarks.md"
    )
    assert github_anchor("Cold start of each package (`--only runtime`)") == "cold-start-of-each-package---only-runtime"
