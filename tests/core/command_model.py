"""A small pure model of the command semantics, written apart from trading.core.machine.

It applies commands ONE AT A TIME, in arrival order: the meaning DESIGN.md rule 10 promises for
commands that arrive together. Both the machine's tests and the StrategyRunner's stateful test
compare against it. A predicted reply is ``(ok, prefix)``: the real reply's text must start with
``prefix``; None where the text depends on data the model does not keep (a `set`'s old -> new).
"""

from __future__ import annotations

BROKEN = ("failed", "restarting")
CUSTOM = "note"
Reply = tuple[bool, str | None]


def apply(phase: str, verb: str) -> tuple[Reply, str]:
    """The reply ``verb`` gets in ``phase``, and the phase it leaves.

    ``paused+restart`` is paused with a restart asked for: resuming it goes back to starting."""
    if phase == "paused+restart":
        reply, after = apply("paused", verb)
        return reply, {"sleeping": "starting", "paused": "paused+restart"}.get(after, after)
    if verb == "status":
        return (True, None), phase
    if phase == "stopped":
        return ((True, "already stopped") if verb == "stop" else (False, "p is stopped")), phase
    if phase == "stopping":
        return ((True, "stopped") if verb == "stop" else (False, "p is stopping")), phase
    if verb == "stop":
        return (True, "stopped"), "stopping"
    broken = phase in BROKEN
    if verb == "pause":
        if broken:
            return (False, f"p is {phase}"), phase
        if phase == "paused":
            return (True, "already paused"), phase
        return (
            True,
            f"paused (was {phase})",
        ), "paused+restart" if phase == "starting" else "paused"
    if verb == "resume":
        if broken:
            return (True, "restarting now"), "starting"
        if phase == "paused":
            return (True, "resumed"), "sleeping"
        return (True, f"not paused ({phase})"), phase
    if verb == "wake":
        if broken:
            return (True, "restarting now"), "starting"
        if phase == "paused":
            return (False, "p is paused"), phase
        if phase == "computing":
            return (True, "already computing"), phase
        return (True, "waking"), "starting" if phase == "starting" else "computing"
    if verb == "set":
        return (True, None), phase
    if verb == CUSTOM:
        return ((False, f"p is {phase}") if broken else (True, "noted")), phase
    raise AssertionError(verb)


def takes_effect(verb: str, phase: str) -> bool:
    """Whether a pause or stop arriving in ``phase`` changes anything (and so interrupts)."""
    if verb == "stop":
        return phase not in ("stopping", "stopped")
    return verb == "pause" and phase not in (
        *BROKEN,
        "paused",
        "paused+restart",
        "stopping",
        "stopped",
    )


def run_burst(phase: str, verbs: list[str]) -> tuple[list[Reply], str]:
    """Replies and end phase for ``verbs`` arriving together, applied one at a time — with the
    one rule beyond that (rule 11): an on_command not yet finished when an effective pause or
    stop arrives is interrupted by it."""
    replies: list[Reply] = []
    phases = []
    for verb in verbs:
        phases.append(phase)
        reply, phase = apply(phase, verb)
        replies.append(reply)
    for i, verb in enumerate(verbs):
        if verb == CUSTOM and replies[i][0]:
            for j in range(i + 1, len(verbs)):
                if verbs[j] in ("pause", "stop") and takes_effect(verbs[j], phases[j]):
                    replies[i] = (False, f"{CUSTOM} interrupted by command {verbs[j]!r}")
                    break
    return replies, phase


def matches(predicted: Reply, ok: bool, message: str) -> bool:
    want_ok, prefix = predicted
    return ok == want_ok and (prefix is None or message.startswith(prefix))
