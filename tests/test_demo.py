"""The demo page (scripts/demo.py): its checks and actions directly, then the page in a real browser.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven headless by Python Playwright through
``executable_path``: Playwright's own browser download is never used.
"""

from __future__ import annotations

import io
import shutil
import socket

import numpy as np
import pytest

from unimodal.errors import UnimodalError

pytestmark = pytest.mark.usefixtures("one_thread")   # the server runs in this process: see conftest.one_thread
CHROMIUM = shutil.which("chromium")
# Offline and as root: no sandbox (root), no GPU, nothing fetched in the background.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def actions(smoke_run, tmp_path_factory):
    from unimodal.demo.actions import Actions
    from unimodal.pipeline import Pipeline, SamplingConfig

    _, run_dir = smoke_run
    defaults = SamplingConfig(cfg_scale={"default": 3.0, "text": 1.0}, max_new_tokens=96)   # text, then an image
    return Actions(Pipeline.load(run_dir, "cpu"), defaults, tmp_path_factory.mktemp("answers"))


def form(**fields):
    return {"prompt": "", "image": None, "sound": None, "outputs": ["image"], "chat": False, "seed": 0,
            "num_samples": 1, **fields}


def png_file(path, size=32):
    from PIL import Image

    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[8:24, 8:24] = (230, 30, 30)   # a red square on the world's black background
    Image.fromarray(pixels).save(path)
    return path


# --- the checks and actions, without a browser ------------------------------------------------------------

def test_options_are_checked():
    from unimodal.commands.demo import parse_options

    assert parse_options(["run=r", "max_new_tokens=64"]) == {"run": "r", "port": 7860, "host": "127.0.0.1",
                                                              "device": None, "sampling": ["max_new_tokens=64"]}
    for bad, says in [([], "run=<run dir> is required"), (["run=r", "port=http"], "port='http'"),
                      (["run=r", "colour=red"], "unknown key 'colour'"), (["run=r", "device=tpu"], "device='tpu'")]:
        with pytest.raises(UnimodalError, match=says):
            parse_options(bad)


def test_form_messages_name_the_control(actions):
    cases = [(form(outputs=[]), "choose what to generate"),
             (form(prompt="a red circle", outputs=["video"]), "this run has no video .*text and image and audio"),
             (form(prompt="a red circle", num_samples=0), "number of samples must be a whole number from 1 to 8"),
             (form(prompt="a red circle", **{"top_k.image": 2.5}), "top-k of image must be a whole number"),
             (form(prompt="a red circle", **{"top_p.audio": 3}), "top-p of audio must be a number from 0 to 1"),
             (form(prompt="a red circle", seed="abc"), "seed must be a whole number"),
             (form(prompt="  "), "nothing to answer: type a prompt or upload an image or a sound")]
    for fields, says in cases:
        with pytest.raises(UnimodalError, match=says):
            actions.request(fields)
    request = actions.request(form(prompt="a red circle", outputs=["image", "text"], **{"cfg_scale.image": 2.0}))
    assert request.outputs == ["text", "image"] and request.parts == ["a red circle"]
    assert request.sampling.get("cfg_scale", "image") == 2.0 and request.sampling.get("cfg_scale", "audio") == 3.0


def test_bad_uploads_are_named(actions, tmp_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("not a picture")
    with pytest.raises(UnimodalError, match=r"notes.png is not an image the page can read .*upload a PNG or JPEG"):
        actions.request(form(image={"path": str(text_file), "orig_name": "notes.png"}))
    with pytest.raises(UnimodalError, match="notes.png is not a sound the page can read"):
        actions.request(form(sound={"path": str(text_file), "orig_name": "notes.png"}))
    from unimodal.demo.uploads import kind_of
    with pytest.raises(UnimodalError, match="this run has no video"):
        kind_of({"path": "x.mp4", "orig_name": "x.mp4"}, ["image", "audio"])
    with pytest.raises(UnimodalError, match=r"notes.txt: the page reads \.png"):
        kind_of({"path": "x", "orig_name": "notes.txt"}, ["image", "audio"])


def test_a_recording_soundfile_cannot_read_goes_through_ffmpeg(tmp_path):
    """Browsers record WebM/Opus or MP4/AAC; libsndfile reads neither, PyAV (FFmpeg) does."""
    import av

    from unimodal.demo.uploads import read_sound

    path = tmp_path / "recording.m4a"
    tone = (0.5 * np.sin(np.linspace(0, 2 * np.pi * 440, 48000))).astype(np.float32)[None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    wave = read_sound({"path": str(path), "orig_name": "recording.m4a"}, 16000)
    assert wave.dtype == np.float32 and abs(len(wave) - 16000) < 1600 and np.abs(wave).max() > 0.2


def test_prompt_longer_than_the_context(actions):
    request = actions.request(form(prompt="a red circle left of a blue square " * 60))
    with pytest.raises(UnimodalError, match="exceeds the model context of 256: shorten the prompt"):
        actions.generate(request)


def test_generate_shows_upscaled_images_and_reports_progress(actions, tmp_path):
    steps = []
    request = actions.request(form(prompt="a red circle", outputs=["text", "image"], num_samples=2))
    answer = actions.generate(request, lambda done, total: steps.append((done, total)))
    from PIL import Image

    assert len(answer.gallery) == 2 and all(Image.open(path).size == (256, 256) for path, _ in answer.gallery)
    assert answer.gallery[0][1].startswith("[1] ") and answer.text.startswith("[1] ")
    assert steps and steps[0][0] == 1 and all(done <= total for done, total in steps)
    image_only = actions.generate(actions.request(form(prompt="a red circle")), lambda d, t: steps.append((d, t)))
    assert steps[-1] == (67, 67) and "1 answer (image)" in image_only.status   # 64 codes, <boi>, <eoi>, <eos>
    assert image_only.status.endswith("images 32 px, shown x8")


def test_sound_streams_through_the_pipeline(actions):
    request = actions.request(form(prompt="a red circle", outputs=["audio"], seed=3))
    assert actions.streams(request)
    chunks = list(actions.stream(request))
    whole = actions.pipeline.generate("a red circle", output="audio", seed=3, sampling=request.sampling)[0].audio[0]
    assert len(chunks) > 1 and np.allclose(np.concatenate(chunks), whole, atol=1e-4)
    answer = actions.streamed_answer(chunks, 0.1, request)
    assert len(answer.sounds) == 1 and answer.sounds[0].suffix == ".wav"


def test_chat_turn_and_reconstruction(actions, tmp_path):
    picture = {"path": str(png_file(tmp_path / "red.png")), "orig_name": "red.png"}
    history, shown = actions.chat([], {"text": "what colour is the object?", "files": [picture]}, ["text", "image"],
                                  form())
    assert [m["role"] for m in history] == ["user", "assistant"] and shown[1]["role"] == "assistant"
    assert shown[0]["content"][-1] == "what colour is the object?"
    result = actions.reconstruct(picture, "image")
    from PIL import Image

    assert Image.open(result.image).size == (256, 256) and result.summary.startswith("**64 tokens**")
    with pytest.raises(UnimodalError, match="upload an image first"):
        actions.reconstruct(None, "image")


def test_run_tab_and_examples(actions, tmp_path):
    from unimodal.demo.examples import run_examples
    from unimodal.demo.run_info import eval_figures, run_summary, tokenizer_cards

    run_dir = actions.pipeline.run_dir
    cards = tokenizer_cards(run_dir, ["text", "image", "audio"])
    assert [c.modality for c in cards] == ["text", "image", "audio"]
    assert cards[1].figures[0].name == "reconstructions.png" and "](reconstructions.png)" not in cards[1].markdown
    assert "image+audio" in run_summary(actions.pipeline)
    assert eval_figures(run_dir)[0].startswith("No evaluation yet")
    examples = run_examples(run_dir, ["image", "audio"], tmp_path, count=3)
    assert len(examples.captions) == 3 and len(examples.images) == 3 and len(examples.sounds) == 3


def test_page_builds_every_tab(actions, tmp_path, monkeypatch):
    """Chat and the streaming player are not in the browser test's run (no stage=instruct, maybe no ffmpeg)."""
    import unimodal.demo.page as page_module
    from unimodal.demo.examples import run_examples

    monkeypatch.setattr(page_module, "is_instruct", lambda run_dir: True)
    examples = run_examples(actions.pipeline.run_dir, ["image", "audio"], tmp_path, count=4, chat=True)
    assert examples.questions and examples.questions[-1][1].startswith("describe this image, then draw it")
    page = page_module.build_page(actions, examples, streaming=True)
    ids = {block.elem_id for block in page.blocks.values() if getattr(block, "elem_id", None)}
    assert {"prompt", "outputs", "generate", "gallery", "chat", "chat-input", "reconstruction"} <= ids
    assert next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == "answer-sound").streaming


def test_script_errors_are_one_line(tmp_path, capsys):
    from unimodal.commands.demo import main

    assert main([f"run={tmp_path / 'missing'}"]) == 2
    assert main(["run=x", "port=99999"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: run directory {tmp_path / 'missing'} does not exist (train one with scripts/train.py)",
                   "error: port='99999': expected a TCP port number from 1 to 65535"]


# --- the page in a browser ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium on PATH (apt-get install chromium; "
                                             ".ci/run installs it)")
def test_page_in_a_browser(smoke_run, tmp_path):
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    from unimodal.commands.demo import parse_options, start

    _, run_dir = smoke_run
    options = parse_options([f"run={run_dir}", f"port={free_port()}", "max_new_tokens=80"])   # short captions
    server, url = start(options, tmp_path / "work")
    elsewhere: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith((url, "data:", "blob:"))
                    else None)
            page.goto(url)
            status = page.locator("#status")

            # 1. a prompt -> an image, shown at the documented upscale (x8 of 32 px) and not all background
            page.locator("#prompt textarea").fill("a red circle")
            page.locator("#generate").click()
            expect(status).to_contain_text("1 answer (image)", timeout=30_000)
            shown = page.locator("#gallery img").first
            image = Image.open(io.BytesIO(page.request.get(shown.get_attribute("src")).body())).convert("RGB")
            pixels = np.asarray(image)
            assert image.size == (256, 256) and (pixels.max(axis=-1) > 16).mean() > 0.01
            page.screenshot(path=tmp_path / "1-prompt-to-image.png")

            # 2. an uploaded PNG -> a caption
            page.locator("#image input[type=file]").set_input_files(png_file(tmp_path / "red-square.png"))
            page.locator("#prompt textarea").fill("")
            outputs = page.locator("#outputs")
            outputs.get_by_label("image").uncheck()
            outputs.get_by_label("text").check()
            page.locator("#generate").click()
            expect(status).to_contain_text("1 answer (text)", timeout=30_000)
            assert page.locator("#answer-text textarea").input_value().startswith("[1] ")
            page.screenshot(path=tmp_path / "2-image-to-caption.png")

            # 3. a text file as an image: refused by name in the page (the browser checks the type of a .txt,
            # the page reads a .png that is not one)
            page.locator("#image button[aria-label='Remove Image']").click()
            (tmp_path / "notes.txt").write_text("not a picture")
            page.locator("#image input[type=file]").set_input_files(tmp_path / "notes.txt")
            expect(page.get_by_text("Invalid file type: notes.txt")).to_be_visible()
            (tmp_path / "notes.png").write_text("not a picture")
            page.locator("#image input[type=file]").set_input_files(tmp_path / "notes.png")
            page.locator("#generate").click()
            expect(status).to_contain_text("notes.png is not an image the page can read", timeout=30_000)
            page.screenshot(path=tmp_path / "3-text-file-as-image.png")
            page.locator("#image button[aria-label='Remove Image']").click()
            page.locator("#prompt textarea").fill("a red circle left of a blue square " * 60)
            page.locator("#generate").click()
            expect(status).to_contain_text("exceeds the model context of 256: shorten the prompt", timeout=30_000)

            # 4. the server still serves: the prompt generates again
            page.locator("#prompt textarea").fill("a blue square")
            outputs.get_by_label("text").uncheck()
            outputs.get_by_label("image").check()
            page.locator("#generate").click()
            expect(status).to_contain_text("1 answer (image)", timeout=30_000)
            page.screenshot(path=tmp_path / "4-generates-again.png")
            browser.close()
    finally:
        server.close()
    assert not elsewhere, f"the page fetched from outside the server: {elsewhere}"
    assert all((tmp_path / f"{step}.png").is_file() for step in ("1-prompt-to-image", "4-generates-again"))
