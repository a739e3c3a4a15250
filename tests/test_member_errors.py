"""A member's error keeps its English text for logs and says itself again in the member's language."""

from __future__ import annotations

from fluxbot import catalog, i18n
from fluxbot.budgets import Budget, BudgetUse, budget_refusal
from fluxbot.errors import MemberError, Message, Number, OptionName
from fluxbot.jobs.requests import EMPTY_PROMPT, InvalidRequest, check_options
from fluxbot.limits import Limits, Refused
from fluxbot.quotas import Usage, refusal

NOON = 1_795_780_800.0  # 2026-11-27 12:00 UTC


def test_the_english_text_stays_the_string_and_said_gives_the_members_language() -> None:
    error = InvalidRequest(EMPTY_PROMPT)
    assert str(error) == EMPTY_PROMPT
    assert error.said("de").startswith("Der Prompt ist leer.")
    assert error.said("ko") == EMPTY_PROMPT, "no Korean catalog: English"
    assert error.said("es-419") == error.said("es-ES"), "a catalog of the same language"


def test_values_fill_the_template_and_numbers_marked_as_such_are_written_for_the_locale() -> None:
    error = InvalidRequest(
        "The prompt is {length} characters long; the limit is {limit}. Shorten it and try again.",
        length=Number(2000),
        limit=Number(1500),
    )
    assert str(error) == "The prompt is 2,000 characters long; the limit is 1,500. Shorten it and try again."
    assert error.said("fr") == (
        "Le prompt fait 2\u202f000 caractères ; la limite est de 1\u202f500. Raccourcis-le et réessaie."
    )


def test_a_text_built_elsewhere_is_said_as_written_even_with_braces() -> None:
    error = Refused("`{weird}` is on this server's blocklist already.")
    assert str(error) == error.said("de") == "`{weird}` is on this server's blocklist already."


def test_a_counted_refusal_takes_the_form_its_number_needs() -> None:
    one = refusal(Usage(0, None, 1), Limits(daily_images=1), images=1, now=NOON)
    many = refusal(Usage(0, None, 5), Limits(daily_images=5), images=1, now=NOON)
    assert isinstance(one, Message)
    assert isinstance(many, Message)
    assert str(one).startswith("You have used all 1 of your images for today.")
    assert one.said("de").startswith("Du hast dein Tageskontingent von 1 Bild aufgebraucht.")
    assert many.said("de").startswith("Du hast dein Tageskontingent von 5 Bildern aufgebraucht.")
    assert Refused(many).said("de") == many.said("de"), "a refusal keeps the message it was given"


def test_a_part_of_a_sentence_is_said_in_the_same_language() -> None:
    spent = budget_refusal(Budget(1, daily=3), BudgetUse(3, 3), images=1, now=NOON)
    assert spent is not None
    assert str(spent).startswith("This server has used all 3 of its images for today; it resets <t:")
    assert spent.said("fr").startswith("Ce serveur a utilisé ses 3 images du jour ; le quota se réinitialise <t:")
    named = budget_refusal(Budget(1, daily=3, server_name="Cats"), BudgetUse(1, 1), images=3, now=NOON)
    assert named is not None
    assert named.said("ja").startswith("3 枚になりますが、**Cats** の今日の残りは 2 枚です。")


def test_counted_makes_the_error_of_the_class_it_is_called_on() -> None:
    error = MemberError.counted("{n} image left", "{n} images left", 1234)
    assert isinstance(error, MemberError)
    assert str(error) == "1,234 images left"


def test_an_option_is_named_as_the_members_discord_shows_it_and_stays_english_in_logs() -> None:
    kie = catalog.PROVIDERS["kie"]
    try:
        check_options(kie, {"output_format": "gif"}, "generate")
    except InvalidRequest as error:
        refused = error
    else:
        raise AssertionError("gif is not an output format Kie offers")
    assert str(refused) == "`output_format` must be jpeg or png, not `gif`."
    french = refused.said("fr")
    assert french.startswith(f"`{i18n.option_name('fr', 'output_format')}`")
    assert i18n.option_name("fr", "output_format") != "output_format", "French names the option its own way"
    assert refused.said("ko") == str(refused), "no Korean catalog: the English name"
    # Kept in a job's error message, the option stays an option: said in French again after a restart.
    back = Message.read(refused.message.stored())
    assert back is not None
    assert back.said("fr") == french
    assert isinstance(back.values["name"], OptionName)
