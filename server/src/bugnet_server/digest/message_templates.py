"""Message templates for grouping: a message or exception value with what varies between
occurrences of the same error (numbers, ids, dates, addresses...) replaced by placeholders.

Implements docs/sentry-protocol.md §6.4 (messages and value normalization). Named so as not to
be taken for Django templates.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import functools
import re
from typing import Final

# Common TLDs. Two-letter ones that are also English words or file extensions (.id, .is, .in,
# .it, .to, .me, .pl, .rs, .cc ...) are left out: "user.id" or "main.rs" are not hostnames.
_TLDS: Final = (
    "com|net|org|edu|gov|mil|io|co|biz|xyz|online|club|shop|tech|cloud|uk|de|fr|nl|eu|ru|cn|"
    "jp|br|au|ca|ch|es|se|dk|fi|cz|kr|mx|tw|tr|ar|ir|ua|gr|pt|hu|ro|za|nz|sg|hk|il|ie|vn|cl|sk|"
    "lt|lv|ee|bg|hr|si|th|ph|pk|ng|ke|eg|sa|ae|kz|by"
)
_HEX4: Final = "[0-9a-fA-F]{1,4}"
_IPV4: Final = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV6: Final = (
    rf"(?<![\w:])(?:(?:{_HEX4}:){{7}}{_HEX4}|(?:{_HEX4}:){{1,7}}:(?![\w:])|"
    rf"(?:{_HEX4}:){{1,6}}:{_HEX4}|(?:{_HEX4}:){{1,5}}(?::{_HEX4}){{1,2}}|"
    rf"(?:{_HEX4}:){{1,4}}(?::{_HEX4}){{1,3}}|(?:{_HEX4}:){{1,3}}(?::{_HEX4}){{1,4}}|"
    rf"(?:{_HEX4}:){{1,2}}(?::{_HEX4}){{1,5}}|{_HEX4}:(?::{_HEX4}){{1,6}}|"
    rf"::(?:ffff(?::0{{1,4}})?:)?{_IPV4}|:(?::{_HEX4}){{1,7}})(?![\w:])"
)
_MONTH: Final = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_ZONE: Final = r"[+-]\d{4}|UT|GMT|[ECMP][SD]T|[A-IK-Z]"
_DATE: Final = (
    r"\b\d{4}-[01]\d-[0-3]\d(?:[T ][0-2]\d:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
    r"(?:Z|[+-][0-2]\d(?::?[0-5]\d)?)?)?"
    rf"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s\d{{1,2}}\s(?:{_MONTH})\s\d{{2,4}}\s"
    rf"\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s(?:{_ZONE})\b"
    rf"|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),\s\d{{2}}-(?:{_MONTH})-"
    rf"\d{{2}}\s\d{{2}}:\d{{2}}:\d{{2}}\s(?:{_ZONE})\b"
    r"|\b[0-2]?\d:[0-5]\d:[0-5]\d(?:[.,]\d+)?\b"
    r"|\bdatetime\.datetime\([^)]*\)"
)
# One alternation, tried left to right at each position: the order is the precedence of §6.4.
# The email and hostname parts are anchored or bounded so a long run of word characters costs
# linear time, not quadratic.
_VOLATILE_VALUES: Final = re.compile(
    r"(?P<email>(?<![a-zA-Z0-9._%+-])[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,})"
    r"|(?P<url>\b(?:wss?|https?|ftp)://[^\s/$.?#][^\s'\"<>]*)"
    rf"|(?P<hostname>\b(?:[a-zA-Z0-9-]{{1,63}}\.){{1,16}}(?=[a-zA-Z]{{2,6}}\b)(?i:{_TLDS})\b)"
    rf"|(?P<ip>{_IPV6}|\b{_IPV4}\b)"
    r"|(?P<uuid>\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b)"
    r"|(?P<sha1>\b[0-9a-fA-F]{40}\b)"
    r"|(?P<md5>\b[0-9a-fA-F]{32}\b)"
    rf"|(?P<date>{_DATE})"
    r"|(?P<duration>\b\d+(?:ms|(?:\.\d+)?s)\b)"
    r"|(?P<hex>\b0[xX][0-9a-fA-F]+\b)"
    r"|(?P<float>(?:-|\b)\d+\.\d+\b)"
    r"|(?P<int>(?:-|\b)\d+\b)"
    r"|(?P<quoted_str>='[^'\n]*'|=\"[^\"\n]*\")"
    r"|(?P<bool>=(?:[Tt]rue|[Ff]alse)\b)"
)
_AFTER_EQUALS: Final = frozenset({"quoted_str", "bool"})


# Cached: the same few messages recur across events. 1024 entries of at most ~8 KiB each.
@functools.lru_cache(maxsize=1024)
def normalize_message(text: str) -> str:
    """``text`` without what varies between occurrences of the same error (§6.4): the first
    two non-empty lines (plus ``...`` when more followed), with emails, URLs, hostnames, IPs,
    UUIDs, hashes, dates, durations, hex, floats, integers and ``=``-assigned quoted strings and
    booleans replaced by ``<email>``, ``<url>``... ``=<quoted_str>``, ``=<bool>``."""
    lines = [line for line in text.splitlines() if line.strip()]
    kept = "\n".join(lines[:2]) + ("..." if len(lines) > 2 else "")
    return _VOLATILE_VALUES.sub(_placeholder, kept)


def _placeholder(match: re.Match[str]) -> str:
    name = match.lastgroup or ""
    return f"=<{name}>" if name in _AFTER_EQUALS else f"<{name}>"
