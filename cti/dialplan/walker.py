"""A tiny dialplan walker: runs a context's steps the way Asterisk would, for a few applications.

Used by ``cti dialplan check`` to prove the 800 line's fallback as behaviour (cti down: the
caller still reaches the default queue, hearing no cti sound) and by the tests to run the
800 line with the variables cti would set. An application or function it does not model
raises :class:`WalkError`.
"""

from __future__ import annotations

import re
from typing import Callable

from cti.dialplan.model import Dialplan, Extension, app_call

_VAR = re.compile(r"\$\{([^{}]*)\}")
_EXPR = re.compile(r"\$\[([^\[\]]*)\]")


class WalkError(AssertionError):
    """The walk cannot go on: a missing target, an unmodelled application, a loop."""


class Channel:
    """Runs a context's steps with a few applications, the way Asterisk would.

    ``agi`` is called for each AGI() with the route and its arguments and may set
    variables; ``queue`` is called for each Queue() and returns the QUEUESTATUS
    (``None``: the caller was connected and the call ends there).
    """

    def __init__(
        self,
        plan: Dialplan,
        agi: Callable[["Channel", str, list[str]], None],
        queue: Callable[["Channel", str, list[str]], str | None],
        existing_queues: set[str],
    ) -> None:
        self.plan, self.agi, self.queue, self.queues = plan, agi, queue, existing_queues
        self.vars: dict[str, str] = {}
        self.trace: list[tuple[str, str]] = []  # (app, substituted data)
        self.exten = ""
        self.path: list = []  # the Steps run, in order

    # Substitution of ${...} and $[...], innermost first.
    def subst(self, text: str) -> str:
        while True:
            m = _VAR.search(text)
            if m:
                text = text[: m.start()] + self._var(m.group(1)) + text[m.end() :]
                continue
            m = _EXPR.search(text)
            if m:
                text = text[: m.start()] + self._expr(m.group(1)) + text[m.end() :]
                continue
            return text

    def _var(self, name: str) -> str:
        fn = re.fullmatch(r"([A-Z_]+)\((.*)\)", name, re.S)
        if fn:
            func, arg = fn.groups()
            arg = self.subst(arg)
            if func == "QUEUE_EXISTS":
                return "1" if arg in self.queues else "0"
            if func == "CALLERID":  # the caller's number/name, as set on the channel (Set(CALLERID(num)=...))
                return self.vars.get(f"CALLERID({arg})", "")
            if func == "REGEX":  # REGEX("pattern" string): 1 when the pattern occurs in the string
                m = re.fullmatch(r'\s*"((?:[^"\\]|\\.)*)"\s?(.*)', arg, re.S)
                if m is None:
                    raise WalkError(f"REGEX arguments not understood: {arg!r}")
                return "1" if re.search(m.group(1), m.group(2)) else "0"
            if func == "IF":
                cond, _, branches = arg.partition("?")
                yes, _, no = branches.partition(":")
                return yes if cond.strip() not in ("", "0") else no
            raise WalkError(f"function {func} not modelled")
        sub = re.fullmatch(r"([A-Za-z0-9_]+):(\d+)", name)
        if sub:
            return self._var(sub.group(1))[int(sub.group(2)) :]
        if name == "EXTEN":
            return self.exten
        return self.vars.get(name, self.plan.globals.get(name, ""))

    @staticmethod
    def _expr(expr: str) -> str:
        tokens = re.findall(r'"[^"]*"|!=|=|&|\||[^\s"=!&|]+', expr)

        def value(tok: str) -> str:
            return tok[1:-1] if tok.startswith('"') else tok

        def comparison(toks: list[str]) -> str:
            if len(toks) == 1:
                return value(toks[0])
            if not (len(toks) == 3 and toks[1] in ("=", "!=")):
                raise WalkError(f"expression not modelled: {expr!r}")
            equal = value(toks[0]) == value(toks[2])
            return "1" if equal == (toks[1] == "=") else "0"

        def truth(v: str) -> bool:
            return v not in ("", "0")

        ors = [[]]
        for tok in tokens:
            if tok == "|":
                ors.append([])
            else:
                ors[-1].append(tok)
        result = False
        for group in ors:
            ands, cur = [], []
            for tok in group + ["&"]:
                if tok == "&":
                    ands.append(comparison(cur))
                    cur = []
                else:
                    cur.append(tok)
            result = result or all(truth(a) for a in ands)
        if len(ors) == 1 and len(ors[0]) == 1:
            return value(ors[0][0])
        return "1" if result else "0"

    def run(self, context: str, exten: str, max_steps: int = 200) -> None:
        ext = self.plan.find(context, exten)
        if ext is None:
            raise WalkError(f"{exten}@{context} does not exist")
        self.exten, index = exten, 0
        for _ in range(max_steps):
            if index >= len(ext.steps):
                return  # autofallthrough: hang up
            step = ext.steps[index]
            self.path.append(step)
            jump = self._exec(step.app, step.data, context, ext)
            if jump == "hangup":
                return
            if jump is not None:
                to_context, to_exten, label = jump
                if (to_context, to_exten) != (context, self.exten):
                    found = self.plan.find(to_context, to_exten)
                    if found is None:
                        raise WalkError(f"{step.where}: {to_exten}@{to_context} does not exist")
                    context, ext, self.exten = to_context, found, to_exten
                target = ext.label_index(label)
                if target is None:
                    raise WalkError(f"{step.where}: no priority {label!r} in {to_exten}@{to_context}")
                index = target
                continue
            index += 1
        raise WalkError("dialplan loop")

    def _goto(self, target: str, context: str) -> tuple[str, str, str]:
        parts = [p.strip() for p in target.split(",")]
        if len(parts) == 1:
            return context, self.exten, parts[0]
        if len(parts) == 2:
            return context, parts[0], parts[1]
        return parts[0], parts[1], parts[2]

    def _exec(self, app: str, data: str, context: str, ext: Extension):
        if app == "ExecIf":
            cond, _, rest = data.partition("?")
            if self.subst(cond).strip() in ("", "0"):
                return None
            inner_app, inner_data = app_call(rest)
            return self._exec(inner_app, inner_data, context, ext)
        if app == "GotoIf":
            cond, _, branches = data.partition("?")
            yes, _, no = branches.partition(":")
            chosen = yes if self.subst(cond).strip() not in ("", "0") else no
            return self._goto(self.subst(chosen), context) if chosen else None
        value = self.subst(data)
        self.trace.append((app, value))
        if app == "Goto":
            return self._goto(value, context)
        if app == "Set":
            name, _, val = value.partition("=")
            self.vars[name] = val
        elif app == "AGI":
            url, *args = value.split(",")
            self.agi(self, url, args)
        elif app == "Read":
            self.vars[value.split(",")[0]] = self.vars.get("_DTMF", "")
        elif app == "Queue":
            name, *args = value.split(",")
            status = self.queue(self, name, args)
            if status is None:
                return "hangup"
            self.vars["QUEUESTATUS"] = status
        elif app == "Hangup":
            return "hangup"
        elif app not in ("NoOp", "Answer", "Playback", "Dial", "Wait"):
            raise WalkError(f"application {app} not modelled")
        return None

    def apps(self, name: str) -> list[str]:
        return [d for a, d in self.trace if a == name]


