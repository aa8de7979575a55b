"""Alert label and annotation templates, in the subset of Prometheus' syntax people use.

`{{ $value }}`, `{{ $labels.<name> }}` (names may hold dots: `$labels.user.id`),
`{{ index $labels "user.id" }}`, `{{ $rule }}`, `{{ $externalURL }}`, and the Go-template
spellings `.Value`, `.Labels.<name>`. Pipes and calls: `printf "%.2f" $value`, `$value | humanize`,
`humanizePercentage`, `humanizeDuration`, `toUpper`, `toLower`, `title`. Nothing else
is evaluated: a template cannot reach data or code, it only formats the alert's own
value and labels. `check_template` refuses what `render` could not expand, so a rule is
refused when stored rather than failing at evaluation.

Numbers print as Prometheus prints them (Go's `%v` of a float64: 0.05, 12, 1e+06).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<pipe>\|)
      | (?P<word>[$.]?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)*|\$|\.)
    )""",
    re.VERBOSE,
)
FUNCTIONS = (
    "printf",
    "humanize",
    "humanizePercentage",
    "humanizeDuration",
    "toUpper",
    "toLower",
    "title",
    "index",
)
MAX_OUTPUT_CHARS = 8192


class TemplateError(ValueError):
    """A template that cannot be expanded; the message says where and why."""


@dataclass(frozen=True, slots=True)
class TemplateData:
    value: float | None
    labels: Mapping[str, str]
    rule: str
    # Prometheus' `$externalURL`: the collector's address (settings.external_url).
    external_url: str = ""


def format_value(value: float | None) -> str:
    """A float as Go's `%v` writes it (strconv 'g', shortest): 0.05, 12, 1e+06, NaN."""
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text_digits = "".join(str(digit) for digit in digits)
    point = len(text_digits) + int(exponent)  # position of the decimal point
    decimal_exponent = point - 1
    prefix = "-" if sign else ""
    # Go uses the exponent form when the exponent is below -4 or at least 6 (shortest).
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = text_digits[0] + ("." + text_digits[1:] if len(text_digits) > 1 else "")
        sign_char = "-" if decimal_exponent < 0 else "+"
        return f"{prefix}{mantissa}e{sign_char}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text_digits}"
    if point >= len(text_digits):
        return prefix + text_digits + "0" * (point - len(text_digits))
    return f"{prefix}{text_digits[:point]}.{text_digits[point:]}"


def humanize(value: float) -> str:
    """SI prefixes, as Prometheus' humanize: 1234 → 1.234k, 0.0012 → 1.2m."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _go_g4(value)
    if abs(value) >= 1:
        prefix = ""
        for unit in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix = unit
            value /= 1000
        return _go_g4(value) + prefix
    prefix = ""
    for unit in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = unit
        value *= 1000
    return _go_g4(value) + prefix


def humanize_percentage(value: float) -> str:
    return _go_g4(value * 100) + "%"


def humanize_duration(seconds: float) -> str:
    """As Prometheus' humanizeDuration: 1d 2h 3m 4s, or 1.5s, 250ms under a second."""
    if math.isnan(seconds) or math.isinf(seconds):
        return _go_g4(seconds)
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        for unit in ("ms", "us", "ns", "ps"):
            seconds *= 1000
            if abs(seconds) >= 1:
                return _go_g4(seconds) + unit
        return _go_g4(seconds) + "ps"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = seconds - whole
    parts = []
    if days:
        parts.append(f"{days}d")
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if days or hours or minutes:
        parts.append(f"{secs}s")
    else:
        parts.append(f"{_go_g4(secs + fraction)}s")
    return sign + " ".join(parts)


def _go_g4(value: float) -> str:
    """Go's %.4g."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = f"{value:.4g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{exponent[0]}{int(exponent[1:]):02d}"
    return text


def _go_printf(fmt: str, args: list[Any]) -> str:
    """Go's printf for the verbs templates use: %s %v %d %f %.Nf %g %e %q %%."""
    out: list[str] = []
    position = 0
    arg_index = 0
    for match in re.finditer(r"%([-+ #0]*\d*(?:\.\d+)?)([svdfgeEqx%])", fmt):
        out.append(fmt[position : match.start()])
        position = match.end()
        flags, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if arg_index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[arg_index]
        arg_index += 1
        try:
            if verb in "sv":
                text = format_value(arg) if isinstance(arg, float) else _text(arg)
                out.append(("%" + flags + "s") % text)
            elif verb == "q":
                out.append('"' + _text(arg).replace("\\", "\\\\").replace('"', '\\"') + '"')
            elif verb == "d":
                out.append(("%" + flags + "d") % int(_number(arg)))
            else:
                out.append(("%" + flags + verb) % _number(arg))
        except (TypeError, ValueError, OverflowError):
            out.append(f"%!{verb}({_text(arg)})")
    out.append(fmt[position:])
    return "".join(out)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError("not a number")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _tokens(action: str, where: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped_end = len(action.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(action, position)
        if not match or match.end() == position:
            raise TemplateError(f"{where}: cannot read {action[position:].strip()[:40]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _variable(token: str, data: TemplateData | None, where: str) -> Any:
    """`$value`, `$labels`, `$labels.x`, `$rule`, `.Value`, `.Labels.x`."""
    if token in ("$value", ".Value"):
        return data.value if data else 0.0
    if token in ("$rule", ".Rule"):
        return data.rule if data else ""
    if token in ("$externalURL", ".ExternalURL"):
        return data.external_url if data else ""
    if token in ("$labels", ".Labels"):
        return dict(data.labels) if data else {}
    for prefix in ("$labels.", ".Labels."):
        if token.startswith(prefix):
            name = token[len(prefix) :]
            return data.labels.get(name, "") if data else ""
    raise TemplateError(
        f"{where}: unknown variable {token!r}; use $value, $labels.<name>, $rule or $externalURL"
    )


def _literal(kind: str, text: str) -> Any:
    if kind == "number":
        return float(text)
    if text.startswith("`"):
        return text[1:-1]
    return bytes(text[1:-1], "utf-8").decode("unicode_escape")


def _call(name: str, args: list[Any], where: str) -> Any:
    if name == "printf":
        if not args or not isinstance(args[0], str):
            raise TemplateError(f"{where}: printf needs a format string first")
        return _go_printf(args[0], args[1:])
    if name == "index":
        if len(args) != 2 or not isinstance(args[0], Mapping):
            raise TemplateError(f'{where}: use index $labels "<name>"')
        return args[0].get(str(args[1]), "")
    if len(args) != 1:
        raise TemplateError(f"{where}: {name} takes one argument")
    arg = args[0]
    if name in ("toUpper", "toLower", "title"):
        text = _text(arg)
        return {"toUpper": text.upper, "toLower": text.lower, "title": text.title}[name]()
    try:
        number = _number(arg)
    except (TypeError, ValueError):
        raise TemplateError(f"{where}: {name} needs a number, got {_text(arg)!r}") from None
    if name == "humanize":
        return humanize(number)
    if name == "humanizePercentage":
        return humanize_percentage(number)
    return humanize_duration(number)


def _evaluate(action: str, data: TemplateData | None, where: str) -> Any:
    tokens = _tokens(action, where)
    if not tokens:
        raise TemplateError(f"{where}: empty {{{{ }}}}")
    commands: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token[0] == "pipe":
            commands.append([])
        else:
            commands[-1].append(token)
    result: Any = None
    for index, command in enumerate(commands):
        if not command:
            raise TemplateError(f"{where}: empty command around '|'")
        head_kind, head = command[0]
        args = [_operand(kind, text, data, where) for kind, text in command[1:]]
        if index > 0:
            args.append(result)
        if head_kind == "word" and head in FUNCTIONS:
            result = _call(head, args, where)
        elif head_kind == "word" and not head.startswith(("$", ".")):
            raise TemplateError(
                f"{where}: unknown function {head!r}; use one of: {', '.join(FUNCTIONS)}"
            )
        else:
            if args:
                raise TemplateError(f"{where}: {head!r} is not a function")
            result = _operand(head_kind, head, data, where)
    return result


def _operand(kind: str, text: str, data: TemplateData | None, where: str) -> Any:
    if kind in ("string", "number"):
        return _literal(kind, text)
    if text in FUNCTIONS:
        raise TemplateError(f"{where}: {text} must come first in its command")
    return _variable(text, data, where)


def _expand(template: str, data: TemplateData | None) -> str:
    out: list[str] = []
    position = 0
    for match in _ACTION.finditer(template):
        literal = template[position : match.start()]
        if "}}" in literal:
            raise TemplateError(f"unexpected '}}}}' at character {template.index('}}')}")
        out.append(literal)
        where = f"in {{{{{match.group(1).strip()[:40]}}}}}"
        out.append(_text(_evaluate(match.group(1), data, where)))
        position = match.end()
    rest = template[position:]
    if "{{" in rest:
        raise TemplateError(f"unclosed '{{{{' at character {position + rest.index('{{')}")
    if "}}" in rest:
        raise TemplateError(f"unexpected '}}}}' at character {position + rest.index('}}')}")
    out.append(rest)
    return "".join(out)[:MAX_OUTPUT_CHARS]


def check_template(template: str) -> None:
    """Raise TemplateError when `template` could not be expanded."""
    _expand(template, None)


def render(template: str, data: TemplateData) -> str:
    """Expand `template`; a failure becomes Prometheus' `<error expanding template: ...>`."""
    if "{{" not in template:
        return template
    try:
        return _expand(template, data)
    except TemplateError as error:
        return f"<error expanding template: {error}>"
