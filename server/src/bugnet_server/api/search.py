"""The issue search language of the list endpoint (and the UI): Sentry's common subset.

``is:unresolved|resolved|ignored``, ``level:error``, ``release:x``, ``environment:y``, any
``tag:value``, each negated by a leading ``!``; free text matched against title and culprit.
Double quotes group words (``"cart is empty"``, ``release:"shop 2.0"``), with ``\\"`` and
``\\\\`` inside them; a term that is wholly quoted is free text even with a colon in it (a
pasted title), as is a term with nothing after its colon (``KeyError:``). A tag key holding a
colon is written quoted (``"k:x":v``) or as Sentry writes it (``tags[k:x]:v``). Single quotes
are plain characters: ``can't`` and ``'url'`` are searched as typed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet

from bugnet_server.issues.models import Issue, TagValue

STATUSES = {"unresolved", "resolved", "ignored"}


class QueryError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # the term with its quotes taken away
    key: str | None = None  # None: free text
    value: str = ""
    negated: bool = False


def parse(query: str) -> list[Term]:
    """The terms of ``query``; ``QueryError`` for a double quote that is never closed."""
    return [_term(pieces) for pieces in _tokens(query)]


def apply(issues: QuerySet[Issue], query: str | None) -> QuerySet[Issue]:
    """Filter ``issues`` by ``query``; without one, the unresolved issues."""
    if query is None:
        return issues.filter(status=Issue.Status.UNRESOLVED)
    for term in parse(query):
        if term.key is None:
            issues = issues.filter(Q(title__icontains=term.text) | Q(culprit__icontains=term.text))
            continue
        if term.key == "is":
            if term.value not in STATUSES:
                raise QueryError(
                    f"is:{term.value} is not one of is:unresolved, is:resolved, is:ignored"
                )
            match = Q(status=term.value)
        elif term.key == "level":
            match = Q(level=term.value)
        else:
            match = Q(Exists(TagValue.objects.filter(issue=OuterRef("pk"), key=term.key,
                                                     value=term.value)))  # fmt: skip
        issues = issues.filter(~match if term.negated else match)
    return issues


# A token is a list of pieces (text, quoted): ``release:"shop 2.0"`` is [("release:", False),
# ("shop 2.0", True)].
_Pieces = list[tuple[str, bool]]


def _tokens(query: str) -> list[_Pieces]:
    tokens: list[_Pieces] = []
    pieces: _Pieces = []
    plain: list[str] = []
    index, end = 0, len(query)
    while index < end:
        char = query[index]
        if char.isspace():
            if plain:
                pieces.append(("".join(plain), False))
                plain = []
            if pieces:
                tokens.append(pieces)
                pieces = []
            index += 1
        elif char == '"':
            if plain:
                pieces.append(("".join(plain), False))
                plain = []
            text, index = _quoted(query, index + 1)
            pieces.append((text, True))
        else:
            plain.append(char)
            index += 1
    if plain:
        pieces.append(("".join(plain), False))
    if pieces:
        tokens.append(pieces)
    return tokens


def _quoted(query: str, index: int) -> tuple[str, int]:
    """The text of a quoted piece starting at ``index`` (after its opening quote), and where
    the query goes on after its closing quote."""
    out: list[str] = []
    while index < len(query):
        char = query[index]
        if char == "\\" and index + 1 < len(query) and query[index + 1] in '"\\':
            out.append(query[index + 1])
            index += 2
        elif char == '"':
            return "".join(out), index + 1
        else:
            out.append(char)
            index += 1
    raise QueryError("cannot parse the query: a double quote is never closed")


def _term(pieces: _Pieces) -> Term:
    text = "".join(piece for piece, _quoted in pieces)
    first, first_quoted = pieces[0]
    if not first_quoted and first.startswith("tags[") and "]:" in text:
        key, _, value = text[5:].partition("]:")
        negated = False
    else:
        # The key ends at the first colon outside quotes.
        for position, (piece, quoted) in enumerate(pieces):
            if not quoted and ":" in piece:
                head, _, tail = piece.partition(":")
                key = "".join(p for p, _q in pieces[:position]) + head
                rest = pieces[position + 1 :]
                value = tail + "".join(p for p, _q in rest)
                value_quoted = any(q for _p, q in rest)
                break
        else:
            return Term(text)  # no colon outside quotes: free text
        negated = key.startswith("!") and not first_quoted
        key = key[1:] if negated else key
        if not value and not value_quoted:
            return Term(text)  # "KeyError:" is words, not a tag with no value
    if not key:
        return Term(text)
    return Term(text, key, value, negated)
