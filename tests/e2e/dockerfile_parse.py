"""A small reader of docker/Dockerfile.*, for the CI checks of the images (test_docker_*.py).

Enough of the Dockerfile syntax for ours: stages (FROM ... AS name), COPY and ADD (flags, shell
and JSON forms), and the shell commands of RUN split at `&&`, `;` and `|`. It does not build
anything: building the images is docker/build.sh's, by hand.
"""

import json
import pathlib
import re
import shlex
from dataclasses import dataclass, field

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "docker"


@dataclass
class Copy:
    line: int
    instruction: str  # COPY or ADD
    sources: list
    dest: str
    from_stage: str | None


@dataclass
class Stage:
    name: str | None
    base: str
    copies: list = field(default_factory=list)
    commands: list = field(default_factory=list)  # each RUN's commands, as token lists


def dockerfiles():
    return sorted(DOCKER_DIR.glob("Dockerfile.*"))


def _instructions(text):
    """(line number, keyword, arguments) with continuation lines joined and comments dropped."""
    joined, start = "", None
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if start is None:
            start = number
        if stripped.endswith("\\"):
            joined += stripped[:-1] + " "
            continue
        joined += stripped
        keyword, _, args = joined.partition(" ")
        yield start, keyword.upper(), args.strip()
        joined, start = "", None


def _copy(number, keyword, args):
    words = json.loads(args) if args.startswith("[") else shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    return Copy(number, keyword, paths[:-1], paths[-1], from_stage)


def _commands(script):
    """A RUN's shell line as commands (token lists), split at && ; | and negation."""
    tokens = shlex.split(script, comments=False, posix=True)
    commands, current = [], []
    for token in tokens:
        if token in ("&&", "||", ";", "|", "!"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def parse(path):
    """The stages of a Dockerfile, in order."""
    stages = []
    for number, keyword, args in _instructions(pathlib.Path(path).read_text()):
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            assert match, f"{path}:{number}: cannot read FROM {args}"
            stages.append(Stage(name=match.group(2), base=match.group(1)))
        elif keyword in ("COPY", "ADD"):
            stages[-1].copies.append(_copy(number, keyword, args))
        elif keyword == "RUN":
            stages[-1].commands.extend(_commands(args))
    return stages


def apt_installs(stage):
    """Packages the stage's `apt-get install` commands name (options left out)."""
    packages = []
    for command in stage.commands:
        if "apt-get" in command and "install" in command:
            after = command[command.index("install") + 1:]
            packages += [w for w in after if not w.startswith("-")]
    return packages


def installed_files(stage):
    """(source, destination folder or file) of the stage's `install` and `cp` commands, and the
    files its shell redirections write (source None)."""
    pairs = []
    for command in stage.commands:
        if command[0] == "install" and "-d" not in command:
            target, sources, words = None, [], iter(command[1:])
            for word in words:
                if word in ("-t", "-m", "-o", "-g"):
                    value = next(words)
                    target = value if word == "-t" else target
                elif not word.startswith("-"):
                    sources.append(word)
            if target is None:
                sources, target = sources[:-1], sources[-1]
            pairs += [(source, target) for source in sources]
        elif command[0] == "cp":
            paths = [w for w in command[1:] if not w.startswith("-")]
            pairs += [(source, paths[-1]) for source in paths[:-1]]
        pairs += [(None, w[1:]) for w in command if w.startswith(">") and len(w) > 1]
    return pairs


def cmake_build_dir(stage):
    """The -B folder of the stage's cmake configure, or None."""
    for command in stage.commands:
        if command[0] == "cmake" and "-B" in command:
            return command[command.index("-B") + 1]
    return None
