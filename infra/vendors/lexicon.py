"""Word lists and tokenisation shared by the local analyzer and the hashing embedder.

Everything here is a pure function of its input: the local adapters must give the same
answer in every process and on every run.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS: frozenset[str] = _words(
    """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further get got had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've if in into is isn't it it's its itself just let's like me more most much
    mustn't my myself no nor not now of off ok okay on once only or other ought our ours
    ourselves out over own really right same shan't she she'd she'll she's should shouldn't so
    some such sure than that that's the their theirs them themselves then there there's these
    they they'd they'll they're they've this those through to too under until up us very was
    wasn't we we'd we'll we're we've well were weren't what what's when when's where where's
    which while who who's whom why why's will with won't would wouldn't yeah yes yep you you'd
    you'll you're you've your yours yourself yourselves hi hello hey thanks thank please bye
    goodbye um uh oh gonna wanna want need call calling called back one two going know think
    today tomorrow able help day time morning afternoon evening tonight later hour hours
    minute minutes ring give reach next week monday tuesday wednesday thursday friday saturday
    sunday
    """
)
"""Function words and call small talk: never topics, never summary evidence."""

POSITIVE: frozenset[str] = _words(
    """
    good great excellent happy glad pleased love loved lovely wonderful fantastic amazing
    perfect helpful appreciate appreciated satisfied awesome nice brilliant resolved fixed
    works working smooth easy quick delighted thrilled excited recommend best better fine
    """
)
"""Words that signal a satisfied caller."""

NEGATIVE: frozenset[str] = _words(
    """
    bad terrible awful horrible angry upset annoyed frustrated frustrating disappointed
    disappointing unhappy hate hated worst worse broken problem problems issue issues
    complaint complain wrong fail failed failing failure slow useless rude cancel refund
    overcharged confused confusing waiting waited unacceptable ridiculous poor
    """
)
"""Words that signal an unhappy caller."""

NEGATORS: frozenset[str] = _words(
    "not no never don't doesn't didn't isn't wasn't aren't won't can't cannot hardly"
)
"""Words that flip the sentiment of the word right after them (within two words)."""


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens (letters, digits and in-word apostrophes) of ``text``."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences at ``.``, ``!`` or ``?`` followed by whitespace."""
    return [part.strip() for part in _SENTENCE_END.split(text.strip()) if part.strip()]


def content_words(text: str) -> list[str]:
    """The tokens of ``text`` that can carry meaning: no stop words, no numbers, 3+ letters."""
    return [
        token
        for token in tokenize(text)
        if len(token) >= 3 and token.isalpha() and token not in STOP_WORDS
    ]
