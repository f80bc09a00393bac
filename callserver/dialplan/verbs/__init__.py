"""The verbs a dialplan step can name, one module each: the registry, the one list of them."""

from __future__ import annotations

from callserver.dialplan.verbs import (
    answer,
    blacklist,
    conference,
    forward,
    goto,
    hangup,
    hours,
    language,
    menu,
    play,
    queue,
    record_call,
    set,
    survey,
    voicemail,
)
from callserver.dialplan.verbs.base import Registry, Verb

__all__ = ["REGISTRY"]

_VERBS: tuple[Verb, ...] = (
    answer.VERB,
    play.VERB,
    menu.VERB,
    survey.VERB,
    language.VERB,
    hours.VERB,
    blacklist.VERB,
    voicemail.VERB,
    forward.VERB,
    conference.VERB,
    record_call.VERB,
    queue.VERB,
    set.VERB,
    goto.VERB,
    hangup.VERB,
)
REGISTRY: Registry = {verb.name: verb for verb in _VERBS}
