"""Shell completion: `completion bash|zsh` prints a script that asks the command
itself what may come next (`__complete WORDS...`), so the choices always match
the installed version. kubectl (1.26+) completes `kubectl trailboss ...` through
the `kubectl_complete-trailboss` command on the PATH, which answers the same way
in cobra's format."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from trailboss.commands.kinds import ALL

KIND_WORDS = sorted({w for k in ALL for w in (k.kind.lower(), k.plural, *k.short_names)} | {"all"})
# cobra's ShellCompDirectiveNoFileComp: offer these words, never file names.
NO_FILES = ":4"

BASH = """\
# bash completion for trailboss / kubectl-trailboss: source <(trailboss completion bash)
_trailboss_complete() {
    local IFS=$'\\n'
    local words=("${COMP_WORDS[@]:1:$COMP_CWORD}")
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" __complete "${words[@]}" 2>/dev/null)" \\
        -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _trailboss_complete trailboss kubectl-trailboss
"""

ZSH = """\
#compdef trailboss kubectl-trailboss
# zsh completion for trailboss / kubectl-trailboss: source <(trailboss completion zsh)
_trailboss_complete() {
    local -a choices
    choices=("${(@f)$(${words[1]} __complete "${(@)words[2,$CURRENT]}" 2>/dev/null)}")
    compadd -a choices
}
compdef _trailboss_complete trailboss kubectl-trailboss
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH}


def register(sub: Any) -> None:
    shell = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Load it with `source <(kubectl trailboss completion bash)`; with "
        "kubectl 1.26+, `kubectl trailboss <TAB>` completes through kubectl_complete-trailboss.",
    )
    shell.add_argument("shell", choices=sorted(SCRIPTS))
    shell.set_defaults(func=lambda args: _print(SCRIPTS[args.shell]))
    hidden = sub.add_parser("__complete")
    hidden.add_argument("words", nargs=argparse.REMAINDER)
    hidden.set_defaults(func=lambda args: _print("\n".join(candidates(args.root, args.words))))


def _print(text: str) -> int:
    print(text.rstrip("\n"))
    return 0


def candidates(root: argparse.ArgumentParser, words: Sequence[str]) -> list[str]:
    """What may come next after ``words`` (the last one being typed), by prefix."""
    *typed, partial = list(words) or [""]
    parser = root
    positionals = 0
    expecting: argparse.Action | None = None
    for word in typed:
        if expecting is not None:
            expecting = None
            continue
        subparsers = _subcommands(parser)
        if word in subparsers:
            parser, positionals = subparsers[word], 0
        elif word.startswith("-"):
            action = _option(parser, word)
            expecting = action if action is not None and action.nargs != 0 else None
        else:
            positionals += 1
    return sorted(
        w for w in _next(parser, expecting, positionals, partial) if w.startswith(partial)
    )


def _next(
    parser: argparse.ArgumentParser,
    expecting: argparse.Action | None,
    positionals: int,
    partial: str,
) -> list[str]:
    if expecting is not None:
        return [str(c) for c in expecting.choices or ()]
    if partial.startswith("-"):
        return [o for a in parser._actions for o in a.option_strings]
    subparsers = _subcommands(parser)
    if subparsers:
        return [name for name in subparsers if not name.startswith("_")]
    wanted = [a for a in parser._actions if not a.option_strings and a.dest != "help"]
    if positionals < len(wanted):
        action = wanted[positionals]
        if action.choices:
            return [str(c) for c in action.choices]
        if action.dest == "kind":
            return KIND_WORDS
    return []


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices: dict[str, argparse.ArgumentParser] = action.choices
            return choices
    return {}


def _option(parser: argparse.ArgumentParser, word: str) -> argparse.Action | None:
    if "=" in word:
        return None  # the value came with it
    return next((a for a in parser._actions if word in a.option_strings), None)


def for_kubectl(root: argparse.ArgumentParser, words: Sequence[str]) -> None:
    """What `kubectl_complete-trailboss` answers: kubectl passes the words after
    `trailboss` and reads cobra's format."""
    for word in candidates(root, words):
        print(word)
    print(NO_FILES)
