"""The prompt matcher: evasions that must match, innocent prompts that must not, and rules it refuses."""

from __future__ import annotations

import time

import pytest

from fluxbot.moderation import MAX_RULE_LENGTH, Blocklist, InvalidRule, normalize, parse_rule, spelled_out

RULES = Blocklist(parse_rule(r) for r in ("nude", "gore scene", "ass", r"re:blood\s*bath", "re:^kill"))

MUST_MATCH = [
    ("nude", "a nude portrait"),
    ("nude", "A NUDE portrait"),  # case
    ("nude", "a nüde portrait"),  # accents
    ("nude", "a ｎｕｄｅ portrait"),  # fullwidth
    ("nude", "a nu\u200bde portrait"),  # zero-width space
    ("nude", "a nu\u00adde portrait"),  # soft hyphen
    ("nude", "a n.u.d.e portrait"),  # separators between letters
    ("nude", "a n u d e portrait"),
    ("nude", "a n-u_d*e portrait"),
    ("nude", "nude"),  # the whole prompt
    ("nude", "(nude), 4k"),  # punctuation around it
    ("gore scene", "a Gore   Scene at dusk"),  # a phrase, whatever the spacing
    ("gore scene", "a gore-scene"),
    ("ass", "a fat a.s.s"),
    (r"re:blood\s*bath", "a BLOODBATH in the arena"),  # patterns ignore case too
    (r"re:blood\s*bath", "a blood bath"),
    ("re:^kill", "Kill them all"),
]

MUST_NOT_MATCH = [
    "Scunthorpe United at night",  # a rule inside a longer word is not a match
    "a classic car",
    "a bass guitar on a grass hill",
    "nudes are fine here",  # "nude" is a whole-word rule: "nudes" is another word
    "a gore and a scene",  # the phrase's words, but not together
    "a blood red bath",
    "do not kill",  # ^ anchors the pattern at the prompt's start
    "",
]


@pytest.mark.parametrize(("rule", "prompt"), MUST_MATCH)
def test_evasions_of_a_rule_still_match_it(rule: str, prompt: str) -> None:
    found = RULES.match(prompt)
    assert found is not None
    assert found.text == rule


@pytest.mark.parametrize("prompt", MUST_NOT_MATCH)
def test_innocent_prompts_match_nothing(prompt: str) -> None:
    assert RULES.match(prompt) is None


def test_normal_form() -> None:
    assert normalize("  Ｃａｆé\u200d  au\tLAIT!! ") == "cafe au lait"
    assert spelled_out(normalize("I am a b c, xyz").split()) == ["abc"], "runs of two or more single letters"


def test_a_pattern_that_backtracks_forever_elsewhere_matches_in_linear_time() -> None:
    rules = Blocklist([parse_rule("re:(a+)+$"), parse_rule("re:(x|x)*y")])
    prompt = "a" * 20_000 + "b " + "x" * 20_000
    started = time.perf_counter()
    assert rules.match(prompt) is None
    # Python's `re` takes longer than the age of the universe on these; RE2 is linear. Not a speed test: a
    # generous bound only proves that matching ends.
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("   ", "The rule is empty"),
        ("x" * (MAX_RULE_LENGTH + 1), f"at most {MAX_RULE_LENGTH}"),
        ("re:", "The pattern after `re:` is empty"),
        ("re:(unclosed", "is not a pattern I can use"),
        (r"re:(a)\1", "no back-references"),
        ("!!! ...", "no letters or digits"),
    ],
)
def test_rules_that_cannot_work_are_refused_with_what_to_type(typed: str, says: str) -> None:
    with pytest.raises(InvalidRule, match=says.replace("(", r"\(").replace("`", "`")):
        parse_rule(typed)


def test_duplicate_rules_count_once_and_an_empty_list_matches_nothing() -> None:
    assert len(Blocklist([parse_rule("nude"), parse_rule(" nude ")]).rules) == 1
    assert not Blocklist([])
    assert Blocklist([]).match("anything at all") is None
