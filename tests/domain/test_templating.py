"""Alert templates: Prometheus' spellings expand, anything else is refused when stored."""

from __future__ import annotations

import pytest

from app.domain.templating import (
    TemplateData,
    TemplateError,
    check_template,
    format_value,
    humanize,
    humanize_duration,
    humanize_percentage,
    render,
)

DATA = TemplateData(
    value=0.0523,
    labels={"service": "api", "user.id": "u-42", "model": "gpt-4o"},
    rule="HighErrorRate",
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.05, "0.05"),
        (12.0, "12"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-3.5, "-3.5"),
        (0.0, "0"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
    ],
)
def test_values_print_as_go_prints_a_float(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ $value }}", "0.0523"),
        ("{{$value}}", "0.0523"),
        ("{{ .Value }}", "0.0523"),
        ("{{ $labels.service }}", "api"),
        ("{{ .Labels.service }}", "api"),
        ("{{ $labels.user.id }}", "u-42"),
        ('{{ index $labels "user.id" }}', "u-42"),
        ("{{ $labels.missing }}", ""),
        ("{{ $rule }}", "HighErrorRate"),
        ('{{ printf "%.2f" $value }}', "0.05"),
        ('{{ $value | printf "%.1f" }}', "0.1"),
        ("{{ $value | humanizePercentage }}", "5.23%"),
        ("{{ $labels.service | toUpper }}", "API"),
        ("{{ $rule | toLower }}", "higherrorrate"),
        ("error rate {{ $value }} on {{ $labels.service }}", "error rate 0.0523 on api"),
        ("no template here", "no template here"),
        ('{{ printf "%s is %d%%" $labels.model 5 }}', "gpt-4o is 5%"),
    ],
)
def test_render(template: str, expected: str) -> None:
    check_template(template)
    assert render(template, DATA) == expected


def test_humanize_functions() -> None:
    assert humanize(1234) == "1.234k"
    assert humanize(1234567) == "1.235M"
    assert humanize(0.0012) == "1.2m"
    assert humanize(12) == "12"
    assert humanize_percentage(0.25) == "25%"
    assert humanize_duration(3725) == "1h 2m 5s"
    assert humanize_duration(90061) == "1d 1h 1m 1s"
    assert humanize_duration(1.5) == "1.5s"
    assert humanize_duration(0.25) == "250ms"
    assert humanize_duration(0) == "0s"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ $valu }}", "unknown variable"),
        ("{{ exec }}", "unknown function"),
        ("{{ $value ", "unclosed"),
        ("}} text", "unexpected"),
        ("{{ }}", "empty"),
        ("{{ printf }}", "format string"),
        ("{{ $value | }}", "empty command"),
        ("{{ index $labels }}", r"use index \$labels"),
        ("{{ $value $value }}", "not a function"),
        ('{{ "unterminated }}', "cannot read"),
        ("{{ .Foo }}", "unknown variable"),
    ],
)
def test_bad_templates_are_refused_with_a_reason(template: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        check_template(template)


def test_runtime_failure_renders_like_prometheus() -> None:
    data = TemplateData(value=1.0, labels={"service": "api"}, rule="r")
    assert render("{{ $labels.service | humanize }}", data).startswith("<error expanding template:")


def test_printf_mismatch_is_visible_not_an_exception() -> None:
    assert render('{{ printf "%d" $labels.service }}', DATA) == "%!d(api)"
    assert render('{{ printf "%s %s" $rule }}', DATA) == "HighErrorRate %!s(MISSING)"


def test_output_is_bounded() -> None:
    assert len(render("x" * 20000 + "{{ $value }}", DATA)) == 8192
