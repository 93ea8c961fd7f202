"""Recipes: every shipped recipe validates; bad recipes report every problem at once and write nothing."""

import pytest
import yaml

from llmtool import config
from llmtool.errors import UsageError

from llmtool.tasks import TASKS

from conftest import ROOT

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # recipes name their data relative to the project root


# The recipe verbs and how each loads (validates) its recipes; a verb's recipes must pass its own loader.
RECIPE_LOADERS = {verb: (lambda path, verb=verb: config.load_recipe(path, verb=verb)) for verb in config.SCHEMAS}


def recipe_verb(path) -> str:
    """The verb named by a recipe's first line, `# llmtool VERB recipes/NAME.yaml`."""
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    words = first_line.split()
    assert words[:2] == ["#", "llmtool"] and words[3:] == [f"recipes/{path.name}"], first_line
    return words[2]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_validates_and_shows_its_command(in_repo, path):
    verb = recipe_verb(path)
    assert verb in RECIPE_LOADERS, f"{path.name}: no loader for verb '{verb}'"
    recipe = RECIPE_LOADERS[verb](path.relative_to(ROOT))
    assert recipe.task in TASKS
    assert recipe.output_dir


def test_there_are_recipes_for_each_task(in_repo):
    tasks = {config.load_recipe(p.relative_to(ROOT)).task for p in RECIPES if recipe_verb(p) == "finetune"}
    assert tasks == set(TASKS)
    assert any(config.load_recipe(p.relative_to(ROOT)).model.config for p in RECIPES
               if recipe_verb(p) == "finetune")  # a from-scratch recipe


def write_recipe(tmp_path, body: dict, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


@pytest.fixture
def csv_data(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\ngood film,positive\nbad film,negative\n", encoding="utf-8")
    return path


def base(csv_data, **changes):
    body = {"task": "classification", "model": {"name": "some/model"}, "data": {"train": str(csv_data)},
            "train": {"epochs": 1}}
    for key, value in changes.items():
        body[key] = value
    return body


def problems(path, overrides=()):
    with pytest.raises(UsageError) as info:
        config.load_recipe(path, list(overrides))
    return str(info.value)


def test_valid_recipe_and_defaults(tmp_path, csv_data):
    recipe = config.load_recipe(write_recipe(tmp_path, base(csv_data)))
    assert recipe.train.lr == 5e-5 and recipe.train.batch_size == 16
    assert recipe.output_dir == "runs/recipe"


def test_unknown_keys_get_did_you_mean(tmp_path, csv_data):
    body = base(csv_data)
    body["train"] = {"epoks": 2, "learning_rate": 1}
    message = problems(write_recipe(tmp_path, body))
    assert "train.epoks: unknown key (did you mean 'train.epochs'?)" in message
    assert "train.learning_rate: unknown key" in message
    assert "trian" in problems(write_recipe(tmp_path, {**base(csv_data), "trian": {}}))


def test_wrong_types_and_ranges_all_reported_at_once(tmp_path, csv_data):
    body = base(csv_data)
    body["train"] = {"lr": "fast", "batch_size": 0, "epochs": 1.5, "precision": "fp8", "warmup_ratio": 2}
    body["data"]["packing"] = "yes"
    message = problems(write_recipe(tmp_path, body))
    assert "has 6 problems" in message
    for expected in ("train.lr: expected a number, got 'fast'", "train.batch_size: must be at least 1, got 0",
                     "train.epochs: expected an integer, got 1.5", "train.precision: expected one of",
                     "train.warmup_ratio: must be at most 1.0, got 2", "data.packing: expected true or false"):
        assert expected in message


@pytest.mark.parametrize("value", ["inf", "-inf", ".nan"])
def test_a_number_that_is_not_finite_is_one_problem(tmp_path, csv_data, value):
    message = problems(write_recipe(tmp_path, base(csv_data)), [f"train.lr={value}"])
    assert "has 1 problem: train.lr: must be a finite number, got " in message


def test_missing_file_and_columns(tmp_path, csv_data):
    body = base(csv_data)
    body["data"].update({"text_column": "txt", "label_column": "sentiment", "validation": str(tmp_path / "nope.csv")})
    message = problems(write_recipe(tmp_path, body))
    assert "data.text_column: column 'txt' is not in" in message and "did you mean 'text'?" in message
    assert "data.label_column: column 'sentiment' is not in" in message
    assert "data.validation: file" in message and "does not exist" in message


@pytest.mark.parametrize(
    "content, message",
    [(b"", "is empty"), (b"text,label\n", "has a header but no rows"), (b"text,label\ncaf\xe9,positive\n", "is not UTF-8")],
)
def test_bad_data_files(tmp_path, csv_data, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    body = base(csv_data)
    body["data"]["train"] = str(bad)
    assert message in problems(write_recipe(tmp_path, body))


def test_model_name_or_config(tmp_path, csv_data):
    body = base(csv_data, model={"name": "x", "config": {"model_type": "bert"}})
    assert "not both" in problems(write_recipe(tmp_path, body))
    body = base(csv_data, model={})
    assert "model: missing" in problems(write_recipe(tmp_path, body))
    body = base(csv_data, model={"config": {"model_type": "llama"}})
    assert "model.config.model_type" in problems(write_recipe(tmp_path, body))


def test_overrides(tmp_path, csv_data):
    path = write_recipe(tmp_path, base(csv_data))
    recipe = config.load_recipe(path, ["train.lr=3e-5", "train.epochs=2", "data.prefix=summarize: ",
                                       "output_dir=out/here"])
    assert recipe.train.lr == 3e-5 and recipe.train.epochs == 2
    assert recipe.data.prefix == "summarize: " and recipe.output_dir == "out/here"
    assert "train.epocs: unknown key (did you mean 'train.epochs'?)" in problems(path, ["train.epocs=2"])
    assert "must look like section.key=value" in problems(path, ["train.lr"])
    recipe = config.load_recipe(path, ["model.name=null", "model.config={model_type: bert}"])
    assert recipe.model.name is None and recipe.model.config == {"model_type": "bert"}


def test_bad_yaml_and_missing_recipe(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not valid YAML"):
        config.load_recipe(bad)
    with pytest.raises(UsageError, match="does not exist"):
        config.load_recipe(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match="is empty"):
        config.load_recipe(empty)


def test_cli_reports_problems_exit_2_and_writes_nothing(run_cli, tmp_path, csv_data, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    out = tmp_path / "out"
    body = base(csv_data, output_dir=str(out))
    body["train"] = {"lr": "fast", "epoks": 1}
    result = run_cli("finetune", write_recipe(tmp_path, body))
    assert result.exit_code == 2
    assert "train.lr" in result.stderr and "train.epoks" in result.stderr
    assert not out.exists()


def test_dry_run_prints_the_resolved_recipe(run_cli, tmp_path, csv_data):
    out = tmp_path / "out"
    path = write_recipe(tmp_path, base(csv_data, output_dir=str(out)))
    result = run_cli("finetune", path, "train.lr=0.001", "--dry-run")
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.stdout)
    assert resolved["train"]["lr"] == 0.001 and resolved["train"]["batch_size"] == 16
    assert not out.exists()


def test_a_recipe_for_another_verb_is_refused_by_name(tmp_path, csv_data, monkeypatch):
    path = tmp_path / "other.yaml"
    path.write_text("# llmtool finetune other.yaml\n" + yaml.safe_dump(base(csv_data)), encoding="utf-8")
    monkeypatch.setitem(config.SCHEMAS, "distill", config.SCHEMAS["finetune"])  # a second recipe verb
    with pytest.raises(UsageError, match=r"is for llmtool finetune \(its first line says so\); run: llmtool finetune"):
        config.load_recipe(path, verb="distill")
    assert config.load_recipe(path, verb="finetune").task == "classification"


def test_lora_section_is_off_until_given(tmp_path, csv_data):
    path = write_recipe(tmp_path, base(csv_data))
    assert config.load_recipe(path).model.lora is None
    on = config.load_recipe(path, ["model.lora=true"]).model.lora
    assert on == config.LoraSection()  # `lora: true` takes the defaults
    tuned = config.load_recipe(path, ["model.lora.r=4", "model.lora.target_modules=query"]).model.lora
    assert tuned.r == 4 and tuned.target_modules == ["query"] and tuned.alpha == 16.0
    assert config.load_recipe(path, ["model.lora.r=4", "model.lora=null"]).model.lora is None
    found = problems(path, ["model.lora.rank=4", "model.lora.alpha=0", "model.lora=[1]"])
    assert "model.lora: expected a section (mapping)" in found
    found = problems(path, ["model.lora.rank=4", "model.lora.alpha=0"])
    assert "model.lora.rank: unknown key; expected one of r, alpha, dropout, target_modules, merge" in found
    assert "model.lora.alpha: must be above 0.0" in found
