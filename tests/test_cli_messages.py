"""The CLI's conventions, command by command: plain-text help, a bad command line answered with one line
``error: ...`` and exit 2 before any work, a refusal of the server with one line and exit 1, and one progress-bar
style on stderr that stays off when stderr is not a terminal unless forced."""

from __future__ import annotations

import pytest
from conftest import MODELS, load_samples

from service.cli import _parser, main

SHAPES = str(MODELS / "shapes")


def commands() -> dict:
    [action] = [a for a in _parser()._actions if a.dest == "==SUPPRESS==" or getattr(a, "choices", None)
                and isinstance(a.choices, dict)]
    return action.choices


def test_every_help_is_plain_text(capsys):
    names = ["--help", *[f"{name} --help" for name in commands()]]
    assert len(names) > 10
    for argv in names:
        with pytest.raises(SystemExit) as stopped:
            main(argv.split())
        assert stopped.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: onnxplain"), argv
        for markup in ("``", ":class:", ":func:", ".. "):
            assert markup not in out, f"{argv}: {markup!r} in\n{out}"


def bad_command_lines(sample: str) -> dict[str, list[str]]:
    """For every command, a command line it cannot run, caught before any model is loaded."""
    return {
        "serve": ["serve", "--port", "eighty"],
        "models": ["models", "--models-dir", "/no/such/models"],
        "predict": ["predict", SHAPES, "/no/such/image.png"],
        "explain": ["explain", SHAPES, sample, "--param", "window"],
        "consistency": ["consistency", SHAPES, sample, "--grid", "window"],
        "scales": ["scales", SHAPES, sample, "-p", "levels"],
        "measure": ["measure", SHAPES, "/no/such/image.png"],
        "aggregate": ["aggregate", SHAPES, "/no/such/image.png", "--method", "occlusion"],
        "audit": ["audit", "/no/such/dataset", "--model", SHAPES],
        "health": ["health", "--timeout", "soon"],
        "demo": ["demo", "--models-dir", "/no/such/models"],
        "inspect": ["inspect", "/no/such/model.onnx"],
        "ui": ["ui", "--port", "70000"],
    }


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stopped:  # argparse's own refusals
        code = stopped.code
    return code, capsys.readouterr().err


def test_every_command_refuses_a_bad_command_line_in_one_line_with_exit_2(capsys):
    sample = str(load_samples("shapes")[0]["path"])
    cases = bad_command_lines(sample)
    assert set(cases) == set(commands())  # a new command needs its case here
    for name, argv in cases.items():
        code, err = run(argv, capsys)
        assert code == 2, f"{name}: exit {code}, stderr {err!r}"
        assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), f"{name}: {err!r}"
    for argv in (["no-such-command"], [], ["--log-level", "loud", "models"], ["serve", "--models-dir", "/no/such"],
                 ["serve", "--interactive-workers", "0"]):
        code, err = run(argv, capsys)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_a_missing_image_names_itself(capsys):
    assert run(["explain", SHAPES, "/no/such/image.png"], capsys) == (
        2, "error: /no/such/image.png: No such file or directory\n")
    assert run(["explain", SHAPES, str(MODELS)], capsys) == (2, f"error: {MODELS}: is a directory\n")


def test_a_refusal_of_the_server_is_one_line_with_exit_1(server, capsys):
    sample = str(load_samples("shapes")[0]["path"])
    code, err = run(["predict", "no-such-model", sample, "--server", server.address], capsys)
    assert code == 1 and err.startswith("error: NOT_FOUND: ") and err.count("\n") == 1, err
    code, err = run(["explain", "shapes", sample, "--server", server.address, "-p", "stride=0"], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: INVALID_ARGUMENT: occlusion.stride: "), err


class Event:
    def __init__(self, stage: str, done: int, total: int):
        self.stage, self.done, self.total = stage, done, total


def test_progress_bars_share_one_style_and_stay_off_unless_stderr_is_a_terminal(monkeypatch, capsys):
    from service.cli.common import progress_bar

    def draw() -> str:
        with progress_bar("explain") as on_progress:
            for done in range(5):
                on_progress(Event("occlusion", done, 4))
        return capsys.readouterr().err

    monkeypatch.delenv("ONNXPLAIN_PROGRESS", raising=False)
    assert draw() == ""  # pytest's stderr is not a terminal
    monkeypatch.setenv("ONNXPLAIN_PROGRESS", "never")
    assert draw() == ""
    monkeypatch.setenv("ONNXPLAIN_PROGRESS", "always")
    drawn = draw()
    assert "explain (occlusion): 100%|" in drawn and "4/4 pass" in drawn, drawn
    monkeypatch.setenv("ONNXPLAIN_PROGRESS", "sometimes")
    code, err = run(["explain", SHAPES, str(load_samples("shapes")[0]["path"]), "--server", "127.0.0.1:1"], capsys)
    assert (code, err.count("\n")) == (2, 1) and err.startswith("error: ONNXPLAIN_PROGRESS: "), err


def test_a_method_or_parameter_the_protos_lack_is_a_command_line_error(capsys):
    sample = str(load_samples("shapes")[0]["path"])
    assert run(["explain", SHAPES, sample, "--method", "gradcam"], capsys) == (
        2, "error: --method: unknown method 'gradcam'; this client knows ['occlusion', 'rise', 'sobol', 'hsic', "
           "'lime', 'kernel_shap', 'wcam', 'eva']\n")
    assert run(["explain", SHAPES, sample, "-p", "windw=4"], capsys) == (
        2, "error: --param: method.occlusion.windw: OcclusionParams has no field 'windw' (it has window, stride)\n")
    code, err = run(["measure", SHAPES, sample, "--method", "rise", "-p", "num_masks=many"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: --param: method.rise: Failed to parse num_masks"), err
