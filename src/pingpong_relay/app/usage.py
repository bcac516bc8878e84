"""The command line's parser: a mistake is two lines naming the flag, not a page of usage.

argparse's own error prints the whole usage (45 lines for `serve`) above the one line that
matters. Here every parser and subparser reports instead:

    pingpong-relay serve: error: --slow-client: 'x' is not one of close, conflate
    try 'pingpong-relay serve --help'

and exits 2; an unknown option gets a "did you mean" when one is close.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from pingpong_relay.app.commands import EXIT_USAGE

__all__ = ["CommandLineParser", "DefaultsHelpFormatter", "print_usage_error"]

# argparse's wordings (Python 3.11 to 3.13) and what a person reads instead.
_INVALID_CHOICE = re.compile(
    r"invalid choice: (?P<value>'.*?'|\S+) \(choose from (?P<choices>.*)\)"
)
_INVALID_VALUE = re.compile(r"invalid (?P<kind>\w+) value: (?P<value>.*)")
_ARGUMENT = re.compile(r"argument (?P<name>[^:]+): (?P<message>.*)", re.DOTALL)
_KINDS = {"int": "a whole number", "float": "a number"}


def print_usage_error(prog: str, message: str) -> int:
    """Prints `prog: error: message` and where to look; returns the usage exit code (2)."""
    # One line each, whatever the message held (a value with a newline, say).
    message = " ".join(message.split())
    sys.stderr.write(f"{prog}: error: {message}\ntry '{prog} --help'\n")
    return EXIT_USAGE


def _plain(message: str) -> str:
    """argparse's message for an argument, as `--flag: what is wrong with the value`."""
    argument = _ARGUMENT.fullmatch(message)
    if argument is None:
        return message
    name, problem = argument["name"], argument["message"]
    choice = _INVALID_CHOICE.fullmatch(problem)
    if choice is not None:
        choices = [c.strip().strip("'") for c in choice["choices"].split(",")]
        value = choice["value"]
        problem = f"{value} is not one of {', '.join(choices)}"
        # Every choice is listed already: name one only when it is clearly what was meant.
        close = difflib.get_close_matches(value.strip("'"), choices, n=1, cutoff=0.8)
        if close:
            problem += f"; did you mean {close[0]}?"
        return f"{name}: {problem}"
    invalid = _INVALID_VALUE.fullmatch(problem)
    if invalid is not None:
        kind = _KINDS.get(invalid["kind"], "a valid value")
        return f"{name}: {invalid['value']} is not {kind}"
    return f"{name}: {problem}"


class CommandLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are two lines (see the module); its subparsers are of
    this class too (argparse makes them of the parent's class)."""

    def error(self, message: str) -> NoReturn:
        """Reports a usage mistake in two lines and exits 2."""
        self.exit(print_usage_error(self.prog, _plain(message)))

    def unrecognized(self, extras: Sequence[str]) -> NoReturn:
        """Reports what no argument of this parser took, with the closest option if any."""
        first = extras[0]
        if not first.startswith("-"):
            self.error(f"unexpected argument {first!r}")
        name = first.split("=", 1)[0]
        options = [option for action in self._actions for option in action.option_strings]
        close = difflib.get_close_matches(name, options, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        self.error(f"unrecognized option {name}{hint}")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        """Like argparse's, but an unknown option is reported by the subcommand it was
        given to, which knows what was meant."""
        parsed: argparse.Namespace
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._command_parser(parsed).unrecognized(extras)
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> CommandLineParser:
        """The subcommand's parser that `parsed` went through (this one if none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
                if isinstance(chosen, CommandLineParser):
                    return chosen
        return self


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that ends each option with its default, unless it has none to show (None):
    "(default: None)" tells a reader nothing, the help text says what happens instead."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)
