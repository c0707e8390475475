"""demo.py, with its recipes shrunk to seconds (the real ones train for minutes to an hour)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import demo  # noqa: E402

TINY = dict(hidden_size=8, num_layers=1, seq_len=16, batch_size=4, eval_every=None,
            sample_length=20, backend="numpy")


def test_every_recipe_is_a_valid_config():
    from lstm_scratch.config import TrainConfig
    for name, recipe in demo.RECIPES.items():
        TrainConfig.from_dict(dict(recipe)).resolved()          # a typo'd field fails here


@pytest.mark.parametrize("name", ["keras", "best"])
def test_closing_samples_use_the_recipe_temperatures(name, tmp_path, monkeypatch, capsys):
    recipe = dict(demo.RECIPES[name], **TINY)
    if recipe["mode"] == "window":
        recipe["step"] = 97                                     # fewer validation windows
    monkeypatch.setitem(demo.RECIPES, name, recipe)
    assert demo.main(["--recipe", name, "--max-steps", "2", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    for t in recipe["sample_temperatures"]:
        assert f"----- temperature {t:g}:" in printed            # the run's own, at step 2
        assert f"===== a sample at temperature {t}, primed" in printed


def test_the_readme_command_is_the_best_recipe():
    import shlex
    from lstm_scratch.cli import build_parser
    readme = open(os.path.join(os.path.dirname(demo.__file__), "README.md"), encoding="utf-8").read()
    block = readme.split("python demo.py --recipe best     # is the same run as:\n", 1)[1]
    command = block.split("\nlstm-scratch eval", 1)[0].replace("\\\n", " ")
    args = vars(build_parser().parse_args(shlex.split(command)[1:]))
    recipe = demo.RECIPES["best"]
    assert {k: args[k] for k in recipe if k != "mode"} == {k: v for k, v in recipe.items()
                                                          if k != "mode"}
    assert args["mode"] in (None, recipe["mode"])                   # stream is the default
