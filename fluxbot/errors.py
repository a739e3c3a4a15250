"""The base of every error fluxbot raises on purpose, and the family of errors a member is told as they are.

Each boundary has one family under `FluxbotError`: `config.ConfigError` (settings), `storage.StoreError` (the
database), `providers.base.ProviderFault` (the image APIs and their callbacks), `delivery.DeliveryError` (Discord)
and `MemberError` (what a member asked for: `limits.Refused`, `jobs.requests.InvalidRequest`).

A member's message is a `Message`: its English template and values, so it can be said again in the member's
language (`MemberError.said`); as a `str` it is the English text (logs, tests).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, Self

from fluxbot import i18n


class Number(int):
    """A number in a member's message written the locale's way (1,500 / 1.500); a plain int is written as is.

    A value may also be a `Message` (a part of a sentence said in the same locale, e.g. "This server").
    """


class OptionName(str):
    """A command option's name in a member's message, said as the member's Discord shows it (the option's
    localized name: `guidage` in French)."""


class Message(str):
    """An English text that keeps its template and values, so it can be said in another locale."""

    template: str
    values: Mapping[str, object]
    forms: tuple[str, str, int] | None

    def __new__(cls, template: str, /, **values: object) -> Self:
        """The message `template` (its `{name}` placeholders filled from `values`); without values, as written."""
        return cls._made(template, values, None)

    @classmethod
    def counted(cls, singular: str, plural: str, n: int, /, **values: object) -> Self:
        """The form of the message that fits the number `n` (`i18n.plural`: `{n}` is `n` written for the locale)."""
        return cls._made(singular, values, (singular, plural, n))

    @classmethod
    def _made(cls, template: str, values: Mapping[str, object], forms: tuple[str, str, int] | None) -> Self:
        made = str.__new__(cls, _say(i18n.SOURCE, template, values, forms))
        made.template, made.values, made.forms = template, values, forms
        return made

    def said(self, locale: i18n.LocaleValue) -> str:
        """The message in `locale` (English when its catalog lacks it)."""
        return _say(locale, self.template, self.values, self.forms)

    def stored(self) -> str:
        """The message as a database keeps it (`Message.read` reads it back): JSON when it has values, else its
        English text."""
        data = _data(self)
        return data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)

    @classmethod
    def read(cls, text: str | None) -> Message | None:
        """A stored message (`stored`), or a plain text (an older row's English) as a message without values."""
        if text is None:
            return None
        if text.startswith('{"' + _STORED + '":'):
            try:
                return _message_of(json.loads(text))
            except (ValueError, TypeError, KeyError):
                pass  # not ours after all: shown as it is
        return cls(text)


_STORED = "said"


def either(values: Sequence[str]) -> Message | str:
    """Values as a member may pick one of them, joined by the language's "or" ("jpeg or png or webp"); each value
    is shown as it is typed."""
    # Translators: joins the values an option takes ("jpeg or png or webp"); each value is as typed.
    joined = i18n.N_("{values} or {value}")
    return functools.reduce(lambda shown, more: Message(joined, values=shown, value=more), values[1:],
                            values[0] if values else "")  # fmt: skip


def said(message: str | None, locale: i18n.LocaleValue) -> str | None:
    """A stored or raised message (a job's `error_message`, a provider's `user_message`) in `locale`: a `Message`
    in it, any other text as it is."""
    return message.said(locale) if isinstance(message, Message) else message


def stored_text(message: str | None) -> str | None:
    """What a database column keeps of a member's message: a `Message` as `Message.stored`, other text as it is."""
    return message.stored() if isinstance(message, Message) else message


def _data(message: Message) -> dict[str, Any] | str:
    """A message as JSON data: its English text when it has no values, else its template, values and forms."""
    if not message.values and message.forms is None:
        return str(message)
    values = {k: _stored_value(v) for k, v in message.values.items()}
    return {_STORED: message.template, "values": values, "forms": message.forms}


def _stored_value(value: object) -> object:
    if isinstance(value, Message):
        return {"message": _data(value)}
    if isinstance(value, Number):
        return {"number": int(value)}
    if isinstance(value, OptionName):
        return {"option": str(value)}
    return value if isinstance(value, int | float | str) or value is None else str(value)


def _message_of(data: dict[str, Any]) -> Message:
    values = {k: _read_value(v) for k, v in data["values"].items()}
    forms = data.get("forms")
    if forms is not None:
        singular, plural, n = forms
        return Message.counted(str(singular), str(plural), int(n), **values)
    return Message(str(data[_STORED]), **values)


def _read_value(value: object) -> object:
    if isinstance(value, dict) and "number" in value:
        return Number(value["number"])
    if isinstance(value, dict) and "option" in value:
        return OptionName(value["option"])
    if isinstance(value, dict) and "message" in value:
        inner = value["message"]
        return _message_of(inner) if isinstance(inner, dict) else Message(str(inner))
    return value


def _say(
    locale: i18n.LocaleValue, template: str, values: Mapping[str, object], forms: tuple[str, str, int] | None
) -> str:
    shown = {k: _value(locale, v) for k, v in values.items()}
    if forms is not None:
        singular, plural, n = forms
        return i18n.plural(locale, singular, plural, n, **shown)
    if not shown and ("{" in template or "}" in template):
        return template  # a text built elsewhere (an f-string with a member's words): no catalog has it
    return i18n.text(locale, template, **shown)


class FluxbotError(Exception):
    """An error fluxbot raises on purpose; its message is safe to log (no secrets)."""


class MemberError(FluxbotError):
    """What a member asked for cannot be done (here, now); the message says why and what to do."""

    def __init__(self, message: str, /, **values: object) -> None:
        self.message = message if isinstance(message, Message) and not values else Message(message, **values)
        super().__init__(str(self.message))

    @classmethod
    def counted(cls, singular: str, plural: str, n: int, /, **values: object) -> Self:
        """The error whose message takes the form that fits the number `n` (`{n}`, or a named value)."""
        return cls(Message.counted(singular, plural, n, **values))

    def said(self, locale: i18n.LocaleValue) -> str:
        """The message in `locale` (the member's: `i18n.member_locale`), English when its catalog lacks it."""
        return self.message.said(locale)


def _value(locale: i18n.LocaleValue, value: object) -> object:
    """A placeholder's value as said in `locale`: a `Message` in it, a `Number` the locale's way, else as it is."""
    if isinstance(value, Message):
        return value.said(locale)
    if isinstance(value, OptionName):
        return i18n.option_name(locale, value)
    # A whole number is written the locale's way only when marked (an id must not become "1,234"); a fraction is
    # always a quantity (1.5 minutes, 21.3 MB).
    return i18n.number(locale, value) if isinstance(value, Number | float) else value
