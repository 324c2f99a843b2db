"""What the store's messages are made of, kept translatable (`appliance.i18n.T`): lists of
pieces that are `Text` themselves, and the message of one error passed on in another."""

from __future__ import annotations

from collections.abc import Iterable

from appliance.i18n import T


def joined(items: Iterable[str]) -> str:
    """`", ".join(items)`, as a `Text` whose items are translated one by one on the page
    (e.g. "DID +74951234567, route city"); "" when there are none."""
    result: str | None = None
    for item in items:
        # TRANSLATORS: two parts of a list ("extension 101, route city"), the first may be a list
        result = item if result is None else T("{head}, {tail}", head=result, tail=item)
    return "" if result is None else result


def either(items: Iterable[str]) -> str:
    """`" or ".join(items)`, as a `Text` ("udp or tcp"); "" when there are none."""
    result: str | None = None
    for item in items:
        # TRANSLATORS: two choices ("udp or tcp"), the first may be choices itself
        result = item if result is None else T("{head} or {tail}", head=result, tail=item)
    return "" if result is None else result


def reason(exc: BaseException) -> str:
    """The message `exc` was raised with, as it was (a `Text` when it was one), to pass on in
    another error: `str(exc)` would keep only its English."""
    if len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)
