"""The analysis registry is the one declaration the edges are generated from: every registered
analysis is a CLI command and an HTTP route whose options and body fields are its parameters,
with the same defaults and bounds, and bad values are refused on both edges naming the parameter
in that edge's spelling."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from loudou.analyses.registry import ANALYSES
from loudou.cli import app
from loudou.cli.generated import flag
from loudou.server.app import create_app
from loudou.server.generated import body_model

runner = CliRunner()


def test_every_analysis_is_a_command_and_a_route():
    commands = {c.name for c in app.registered_commands}
    paths = create_app(":memory:").openapi()["paths"]  # the routes, as documented at /docs
    for a in ANALYSES.values():
        assert a.name in commands
        route = paths[a.route]["post"]
        fields = route["requestBody"]["content"]["application/json"]["schema"]["properties"]
        assert set(fields) == set(a.params.model_fields) | ({"spec"} if a.on_funnel else set())


@pytest.mark.parametrize("name", list(ANALYSES))
def test_options_and_body_fields_are_the_parameters(name):
    a = ANALYSES[name]
    help_text = runner.invoke(app, [name, "--help"], terminal_width=200).output
    body = body_model(a).model_fields
    for param, field in a.params.model_fields.items():
        assert flag(param, field) in help_text, param
        assert body[param].default == field.default and body[param].metadata == field.metadata
    assert ("spec" in body) == a.on_funnel
    assert set(body) - {"spec"} == set(a.params.model_fields)


def test_a_bound_is_enforced_by_both_edges(tmp_path):
    """limit >= 1 is declared once: the CLI refuses --limit 0 (usage error), the HTTP body's
    model refuses limit 0 naming 'limit'."""
    from pydantic import ValidationError

    result = runner.invoke(
        app, ["paths", "--after", "x", "--limit", "0", "--db", str(tmp_path / "x.duckdb")]
    )
    assert result.exit_code == 2 and "--limit" in result.output
    with pytest.raises(ValidationError) as caught:
        body_model(ANALYSES["paths"]).model_validate({"after": "x", "limit": 0})
    assert caught.value.errors()[0]["loc"] == ("limit",)
    with pytest.raises(ValidationError):
        body_model(ANALYSES["paths"]).model_validate({"after": "x", "limitt": 3})  # a typo


@pytest.mark.parametrize(
    "field,argv,spelled",
    [
        ("min_customers", ["compare", "s.yaml", "--min-customers", "0"], "--min-customers"),
        ("properties", ["correlate", "s.yaml", "--property", "x"], "--property"),
        ("by", ["kpi", "repeat", "--by=x"], "--by"),  # a subcommand, an option given with =
        ("after", ["paths"], "--after"),  # no spec file: every field is an option
        ("mode", ["funnel", "--step", "a", "--mode", "x"], "--mode"),
        ("mode", ["funnel", "spec.yaml"], "mode"),  # from the spec file, not an option typed
        ("steps", ["funnel"], "steps"),  # not an option at all
        ("--db", ["funnel"], "--db"),
        (None, ["paths"], None),
    ],
)
def test_errors_name_parameters_and_the_cli_spells_them_as_options(field, argv, spelled):
    """Analyses name their parameters (the HTTP API's field names); the command line prints the
    option a user typed."""
    from loudou.cli import cli_spelling

    assert cli_spelling(field, argv) == spelled
