"""data=chat: LLaVA-format conversations tune an earlier run; bad records are skipped and named, nothing stops."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import loss_of, smoke_overrides
from unimodal.config import compose
from unimodal.data.llava import parse_records, read_conversations
from unimodal.errors import ConfigError, DataError


def turn(role: str, value: str) -> dict:
    return {"from": role, "value": value}


def write_llava_file(folder) -> tuple:
    """Seven records, one a line in a JSON array: line 4 is not JSON, line 6 names a missing image."""
    (folder / "img").mkdir(parents=True)
    for name, colour, size in (("red", (230, 30, 30), (48, 32)), ("blue", (30, 30, 230), (32, 32))):
        Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(folder / "img" / f"{name}.png")
    good = [
        {"id": "0", "image": "img/red.png", "conversations": [turn("human", "<image>\nwhat colour is it?"),
                                                              turn("gpt", "red")]},
        {"id": "1", "image": "img/blue.png", "conversations": [turn("human", "what colour is it?"),
                                                               turn("gpt", "blue"),
                                                               turn("human", "and its shape?"),
                                                               turn("gpt", "a square")]},
        {"id": "2", "image": ["img/red.png", "img/blue.png"],
         "conversations": [turn("human", "<image>\n<image>\nwhich one is red?"), turn("gpt", "the first")]},
    ]
    lines = ["["]
    lines += [json.dumps(r) + "," for r in good[:2]]
    lines.append('{"id": "bad", "image": "img/red.png", "conversations": [{"from": "human" "value": "hi"}]},')
    lines.append(json.dumps(good[2]) + ",")
    lines.append(json.dumps({"id": "3", "image": "img/nowhere.png",
                             "conversations": [turn("human", "<image>\nwhat is it?"), turn("gpt", "nothing")]}) + ",")
    lines.append(json.dumps({"id": "4", "conversations": [turn("system", "answer briefly"),
                                                          turn("human", "say hi"), turn("gpt", "hi")]}))
    lines.append("]")
    path = folder / "chat.json"
    path.write_text("\n".join(lines) + "\n")
    return path, 4, 6


def test_llava_file_keeps_the_good_records_and_names_the_bad(tmp_path):
    path, bad_json, missing = write_llava_file(tmp_path)
    conversations, skipped = read_conversations(path, image_size=32)
    assert [c.where for c in conversations] == [f"{path}:{n}" for n in (2, 3, 5, 7)]
    assert len(skipped) == 2
    assert skipped[0].startswith(f"{path}:{bad_json}: not valid JSON")
    assert skipped[1] == f"{path}:{missing}: image 'img/nowhere.png' missing"
    first, no_tag, two, text_only = conversations
    assert first.turns == [("user", [0, "what colour is it?"]), ("assistant", ["red"])]
    assert first.images[0].shape == (32, 32, 3)  # 48x32 centre-cropped to a square, then 32 px
    assert no_tag.turns[0] == ("user", [0, "what colour is it?"])  # LLaVA: the image opens the first human turn
    assert two.turns[0][1] == [0, 1, "which one is red?"] and len(two.images) == 2
    assert text_only.turns[0] == ("system", ["answer briefly"]) and not text_only.images


def test_a_pretty_printed_array_is_read_past_a_broken_record():
    records = [{"image": "a.png", "conversations": [turn("human", "q"), turn("gpt", str(i))]} for i in range(3)]
    text = json.dumps(records, indent=2)
    broken = text.replace('"1"', '"1" oops', 1)
    found = list(parse_records(broken))
    assert [r["conversations"][1]["value"] for _, r, _ in found if r is not None] == ["0", "2"]
    assert [why for _, r, why in found if r is None][0].startswith("not valid JSON")
    lines = list(parse_records("\n".join(json.dumps(r) for r in records)))  # JSON lines
    assert [line for line, _, _ in lines] == [1, 2, 3]


def test_instruct_trains_on_a_llava_file_and_names_the_two_bad_entries(smoke_run, tmp_path, capsys, first_step,
                                                                       one_thread):
    """Must show: instruct trains on a LLaVA-format file with one bad line and one missing image; both are named.
    It tunes a pretrained run of ours (init_from): the first loss is that run's model's on the same batch."""
    from unimodal.training.run import train

    _, source = smoke_run
    path, bad_json, missing = write_llava_file(tmp_path / "data")
    run = train(compose(smoke_overrides(tmp_path, "stage=instruct", f"init_from={source}", "data=chat",
                                        f"data.path={path}", f"run_dir={tmp_path}/chat-run",
                                        "trainer.precision=32-true")))
    assert first_step["loss"] == pytest.approx(loss_of(source, first_step["batch"]), abs=1e-6)
    out = capsys.readouterr().out
    named = [line for line in out.splitlines() if line.startswith("[data] skipped ")]
    assert len(named) == 2
    assert f"{path}:{bad_json}: not valid JSON" in named[0] and f"{path}:{missing}: image" in named[1]
    assert "4 conversations" in out
    assert json.loads((run / "instruct" / "summary.json").read_text())["steps"] == 4
    assert (run / "lm" / "config.json").is_file()


def test_chat_data_needs_an_earlier_run_and_a_file(smoke_run, tmp_path):
    from unimodal.training.run import train

    with pytest.raises(ConfigError, match="init_from"):
        train(compose(smoke_overrides(tmp_path, "stage=instruct", "data=chat", f"data.path={tmp_path}/x.json")))
    with pytest.raises(ConfigError, match="data.path"):
        train(compose(smoke_overrides(tmp_path, "stage=instruct", "data=chat", f"init_from={smoke_run[1]}")))
    with pytest.raises(DataError, match="no such file"):
        train(compose(smoke_overrides(tmp_path, "stage=instruct", "data=chat", f"init_from={smoke_run[1]}",
                                      f"data.path={tmp_path}/x.json", f"run_dir={tmp_path}/r")))
