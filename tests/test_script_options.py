"""Every script checks its options against a schema: a wrong name, type or range is one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from unimodal.commands.options import GenerateConfig, validate_generate

ROOT = Path(__file__).resolve().parent.parent

BAD = {
    "generate": [
        (["run=r", "prompt=a", "num_samples=0"], "num_samples=0"),
        (["run=r", "prompt=a", "num_samples=-2"], "num_samples=-2"),
        (["run=r", "prompt=a", "max_new_tokens=0"], "max_new_tokens=0"),
        (["run=r", "prompt=a", "cfg_scale.image=abc"], "cfg_scale.image"),
        (["run=r", "prompt=a", "seed=abc"], "seed"),
        (["run=r", "prompt=a", "top_p.image=1.5"], "top_p.image"),
        (["run=r", "prompt=a", "temperature.text=-1"], "temperature.text"),
        (["run=r", "prompt=a", "output=smell"], "'smell'"),
        (["run=r", "prompt=a", "output=[text,smell]"], "'smell'"),
        (["run=r", "prompt=a", "+cfg_scale.vidoe=3"], "vidoe"),
        (["run=r", "prompt=a", "num_sample=2"], "num_sample"),
        (["run=r", "prompt=a", "fast=maybe"], "fast"),
        (["prompt=a"], "run="),
        (["run=r"], "prompt"),
    ],
    "evaluate": [
        (["run=r", "samples=0"], "samples=0"),
        (["run=r", "samples=-5"], "samples=-5"),
        (["run=r", "samples=abc"], "samples"),
        (["run=r", "batch_size=0"], "batch_size=0"),
        (["run=r", "cfg_scale=abc"], "cfg_scale"),
        (["run=r", "directions=[text->smell]"], "text->smell"),
        (["run=r", "sample=3"], "'sample'"),
        (["run=r", "device=gpu"], "device"),
        (["compare=[]"], "compare"),
        (["task=tokenizer", "tokenizer=t", "num_images=0"], "num_images=0"),
        (["task=tokenizer", "tokenizer=t", "grid=-1"], "grid=-1"),
        (["task=tokenizer", "tokenizer=t", "num_codebooks=abc"], "num_codebooks"),
        (["task=tokenizer", "tokenizer=t", "split=tset"], "split"),
        (["task=tokenizers"], "task="),
    ],
    "export": [
        (["run=r"], "out="),
        (["run=r", "out=o", "extra=1"], "'extra'"),
    ],
    "make_shards": [
        (["splits=[train,tset]"], "'tset'"),
        (["splits=[]"], "splits"),
        (["modality=smell"], "'smell'"),
        (["lm.batch_size=0"], "lm.batch_size=0"),
        (["data.num_train=-1"], "data.num_train=-1"),
        (["data.num_train=abc"], "data.num_train"),
        (["model.hiden_size=3"], "hiden_size"),
    ],
}


def _main(script: str):
    from importlib import import_module

    return import_module(f"unimodal.commands.{script}").main


@pytest.mark.parametrize("script, args, key", [(s, a, k) for s, cases in BAD.items() for a, k in cases])
def test_bad_option_is_one_line_naming_the_key(script, args, key, capsys):
    assert _main(script)(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out


# The scripts are one-line wrappers, ``sys.exit(main())``, so main()'s 2 above is their exit code; two of them run
# as processes here to show it (export and make_shards start transformers and hydra: slow on a busy box).
@pytest.mark.parametrize("script, args", [("generate", ["run=r", "prompt=a", "num_samples=0"]),
                                          ("evaluate", ["run=r", "samples=-1"])])
def test_scripts_exit_with_code_2_and_one_line(script, args):
    result = subprocess.run([sys.executable, f"scripts/{script}.py", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_generate_schema_matches_its_yaml():
    """conf/generate.yaml and GenerateConfig name the same keys with the same defaults."""
    from dataclasses import asdict

    keys = yaml.safe_load((ROOT / "conf" / "generate.yaml").read_text())
    for hydra_own in ("defaults", "hydra"):   # the Hydra app's settings, not options
        keys.pop(hydra_own, None)
    assert keys == asdict(GenerateConfig())
    checked = validate_generate({"run": "r", "prompt": "a", "output": ["text", "image"], "fast": True})
    assert list(checked.output) == ["text", "image"] and checked.fast == "true"


def test_generate_defaults_sample_media_as_the_evaluation_does():
    """What a user generates (scripts/generate.py, the demo) is sampled as the headline numbers were."""
    from unimodal.eval.sampling import MEDIA_SAMPLING, default_sampling

    defaults, scored = GenerateConfig(), default_sampling()
    for modality, (temperature, scale) in MEDIA_SAMPLING.items():
        assert getattr(defaults.temperature, modality) == temperature == scored.get("temperature", modality)
        assert getattr(defaults.cfg_scale, modality) == scale == scored.get("cfg_scale", modality)
    assert scored.get("temperature", "text") == 0.0 and scored.get("cfg_scale", "text") == 1.0   # greedy captions
    overridden = default_sampling(cfg_scale=4.0, temperature=1.0)   # evaluate.py cfg_scale= temperature=
    assert [overridden.get(knob, m) for knob in ("cfg_scale", "temperature") for m in ("image", "audio")] == [4.0, 4.0,
                                                                                                          1.0, 1.0]


@pytest.mark.parametrize("yaml_name, schemas", [("evaluate", ["evaluate", "evaluate_tokenizer"]),
                                                 ("export", ["export"]), ("make_shards", ["make_shards"])])
def test_every_schema_option_is_a_key_of_its_yaml(yaml_name, schemas):
    """A key the schema checks but the script's YAML lacks is refused by Hydra before the schema sees it (the way
    ``seeds=`` and ``controls=`` of scripts/evaluate.py once were): every option of the script's schemas is a key."""
    from dataclasses import fields

    from unimodal.commands.evaluate import TOKENIZER_KEY
    from unimodal.commands.options import SCHEMAS

    keys = set(yaml.safe_load((ROOT / "conf" / f"{yaml_name}.yaml").read_text())) - {"defaults", "hydra"}
    named = {TOKENIZER_KEY if f.name == "tokenizer" else f.name for name in schemas for f in fields(SCHEMAS[name])}
    assert named <= keys, f"conf/{yaml_name}.yaml lacks {sorted(named - keys)}"


def test_choices_named_for_validation_are_the_models():
    from unimodal.commands import options as command_config
    from unimodal.model.fast_decode import FAST_CHOICES
    from unimodal.model.sampling import SCHEDULES

    assert command_config.SCHEDULES == SCHEDULES and command_config.FAST_CHOICES == FAST_CHOICES
