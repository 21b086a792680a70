"""The command line's contract with the person typing it: no secret as a flag value (``ps`` shows argv),
``--version`` from the package metadata, exit codes 0/1/2 documented in ``--help``, ``-o`` defaults."""

from __future__ import annotations

import argparse
import io
from importlib import metadata
from pathlib import Path

import pytest

from service.cli import output
from tests.support import procs
from tests.test_cli import run_cli

SECRET = "s3cret-approver-token"


@pytest.mark.parametrize(
    "args",
    [
        ["incidents", "list", "--token", SECRET],
        ["incidents", "approve", "i1", "a1", f"--token={SECRET}"],
        ["pause", "--token", SECRET],
        ["replay", "payload.json", "--token", SECRET],
    ],
)
def test_a_token_given_as_a_flag_is_a_usage_error_pointing_at_token_file(args: list[str]) -> None:
    closed = f"http://127.0.0.1:{procs.free_port()}"  # had anything been sent, this would be exit 1
    result = run_cli(*args, "--url", closed)
    assert result.returncode == 2
    assert "--token-file PATH" in result.stderr and "ps" in result.stderr
    assert SECRET not in result.stderr + result.stdout, "the secret is not echoed back"


def test_a_token_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    missing = run_cli("incidents", "list", "--token-file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "cannot read --token-file" in missing.stderr
    (tmp_path / "empty").write_text("\n")
    empty = run_cli("incidents", "ack", "i1", "--token-file", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "is empty" in empty.stderr


def test_an_unreachable_service_is_a_failure_on_stderr() -> None:
    result = run_cli("incidents", "list", "--url", f"http://127.0.0.1:{procs.free_port()}")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("remediator: cannot reach http://127.0.0.1:")


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_a_page_size_the_api_refuses_is_a_usage_error(limit: str) -> None:
    result = run_cli("incidents", "list", "--limit", limit)
    assert result.returncode == 2 and "--limit" in result.stderr


def test_version_comes_from_the_package_metadata() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"remediator {metadata.version('remediator')}\n"


def test_help_documents_tokens_output_and_exit_codes() -> None:
    top = run_cli("--help").stdout
    assert "exit codes: 0 ok; 1 failure" in top and "2 usage" in top
    assert "--token-file PATH" in top and "REMEDIATOR_APPROVER_TOKEN" in top
    assert "-o table|json" in top
    for command in (["incidents", "list"], ["incidents", "approve"], ["pause"], ["status"]):
        text = " ".join(run_cli(*command, "--help").stdout.split())
        assert "exit codes: 0 ok; 1 failure" in text, command
        assert "--token-file PATH" in text and "--token " not in text, "the refused flag is not offered"
    listing = " ".join(run_cli("incidents", "list", "--help").stdout.split())
    assert "table when stdout is a terminal, json otherwise" in listing
    assert "--all" in listing and "per page, 1-1000" in listing


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_output_is_a_table_on_a_terminal_and_json_otherwise() -> None:
    unset = argparse.Namespace(output=None)
    assert output.chosen(unset, _Terminal()) == "table"
    assert output.chosen(unset, io.StringIO()) == "json"
    assert output.chosen(argparse.Namespace(output="json"), _Terminal()) == "json"
    assert output.chosen(argparse.Namespace(output="table"), io.StringIO()) == "table"
