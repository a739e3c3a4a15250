"""Prompt moderation: the rules a server (and the operator) block, and how a prompt is matched against them.

A prompt is normalized before matching, so trivial evasion does not get through: letter case, accents,
fullwidth and other compatibility forms, zero-width and other invisible characters, and separators between
single letters (`n.u.d.e`, `n u d e`). A plain rule is a word or phrase matched as whole words, so a listed word
inside a longer one ("Scunthorpe", "classic") is not a match. A rule written `re:<pattern>` is a regular
expression run by RE2, whose matching time is linear in the prompt's length: no pattern a moderator types can
hang the bot.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import re2  # type: ignore[import-untyped]

from fluxbot.errors import MemberError, Number
from fluxbot.i18n import N_

#: How a rule that is a pattern starts.
PATTERN_PREFIX = "re:"
MAX_RULE_LENGTH = 200
MAX_RULES = 500
#: RE2 refuses to build a pattern that needs more memory than this (a pathological pattern fails to compile).
_PATTERN_MEMORY = 1 << 20


class InvalidRule(MemberError):
    """A blocklist rule that cannot be used; the message says why and what to type instead."""


@dataclass(frozen=True)
class Rule:
    """One blocked word, phrase or pattern, as the moderator (or the operator's file) wrote it."""

    text: str
    #: Whose rule it is: "server" (its moderators') or "operator" (the bot's default list).
    source: str = "server"

    @property
    def is_pattern(self) -> bool:
        """True for a `re:` pattern, False for a word or phrase."""
        return self.text.startswith(PATTERN_PREFIX)


def normalize(text: str) -> str:
    """The prompt as rules see it: compatibility forms folded, accents and invisible characters removed, lower
    case, and every run of other characters (spaces, punctuation, separators) one space."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text)).casefold()
    kept = []
    for char in folded:
        category = unicodedata.category(char)
        if category.startswith("M") or category == "Cf":  # accents; zero-width and other format characters
            continue
        kept.append(char if char.isalnum() else " ")
    return " ".join("".join(kept).split())


def spelled_out(words: Sequence[str]) -> list[str]:
    """Runs of two or more one-character words, each joined: what separators put between letters hid."""
    runs, run = [], ""
    for word in [*words, ""]:
        if len(word) == 1:
            run += word
            continue
        if len(run) >= 2:
            runs.append(run)
        run = ""
    return runs


def parse_rule(written: str, *, source: str = "server") -> Rule:
    """A rule from what a moderator typed; InvalidRule (saying what to fix) when it cannot be used."""
    written = written.strip()
    if not written:
        raise InvalidRule(N_("The rule is empty. Type a word, a phrase, or `re:` and a pattern."))
    if len(written) > MAX_RULE_LENGTH:
        raise InvalidRule(
            N_("The rule is {length} characters long; at most {limit} are allowed."),
            length=Number(len(written)),
            limit=Number(MAX_RULE_LENGTH),
        )
    if written.startswith(PATTERN_PREFIX):
        pattern = written[len(PATTERN_PREFIX) :].strip()
        if not pattern:
            raise InvalidRule(N_("The pattern after `re:` is empty."))
        _compile(pattern)
        return Rule(PATTERN_PREFIX + pattern, source)
    if not normalize(written):
        raise InvalidRule(N_("The rule has no letters or digits, so it could never match a prompt."))
    return Rule(written, source)


def _compile(pattern: str) -> object:
    options = re2.Options()
    options.max_mem = _PATTERN_MEMORY
    options.case_sensitive = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise InvalidRule(
            # Translators: {error} is RE2's own explanation, in English.
            N_(
                "`{pattern}` is not a pattern I can use ({error}). Patterns use RE2's syntax: no back-references "
                "or look-arounds. A plain word or phrase needs no `re:`."
            ),
            pattern=pattern,
            error=str(exc),
        ) from None


class Blocklist:
    """The rules that apply on one server (the operator's and the server's), compiled once for matching."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple({rule.text: rule for rule in reversed(list(rules))}.values())[::-1]
        # (rule, its words padded for a whole-word search, its letters run together for spelled-out prompts)
        self._words = [
            (rule, f" {words} ", words.replace(" ", ""))
            for rule in self.rules
            if not rule.is_pattern
            for words in [normalize(rule.text)]
        ]
        self._patterns = [(rule, _compile(rule.text[len(PATTERN_PREFIX) :])) for rule in self.rules if rule.is_pattern]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, prompt: str) -> Rule | None:
        """The first rule the prompt breaks, or None."""
        if not self.rules:
            return None
        text = normalize(prompt)
        padded = f" {text} "
        # Letters spelled out one by one ("a n.u.d.e") are one run: a rule anywhere inside it is a match.
        runs = spelled_out(text.split())
        for rule, words, letters in self._words:
            if words in padded or any(letters in run for run in runs):
                return rule
        for rule, pattern in self._patterns:
            if any(pattern.search(form) is not None for form in (text, *runs)):  # type: ignore[attr-defined]
                return rule
        return None


@functools.lru_cache(maxsize=256)
def blocklist_of(operator: tuple[str, ...], server: tuple[str, ...]) -> Blocklist:
    """The compiled list of the operator's and a server's rules (kept: servers rarely change them)."""
    return Blocklist(
        [*(parse_rule(text, source="operator") for text in operator), *(parse_rule(text) for text in server)]
    )


NO_RULES = Blocklist(())


def load_rules(text: str) -> tuple[str, ...]:
    """The rules of an operator's list: one per line, `#` starts a comment line; InvalidRule names the line."""
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rules.append(parse_rule(line, source="operator").text)
        except InvalidRule as exc:
            raise InvalidRule(f"line {number}: {exc}") from None
    if len(rules) > MAX_RULES * 10:
        raise InvalidRule(f"{len(rules)} rules; at most {MAX_RULES * 10} are allowed")
    return tuple(rules)
