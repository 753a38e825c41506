"""The page: gradio Blocks with a Generate tab, a Chat tab (runs tuned with stage=instruct) and a Run tab.

Layout only: what a button does is in :mod:`unimodal.demo.actions`. Every handler reads its inputs raw
(``preprocess=False``) so that uploads are read by :mod:`unimodal.demo.uploads`, with messages naming the file.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import gradio as gr

from unimodal.demo.actions import Actions, Answer
from unimodal.demo.examples import Examples
from unimodal.demo.form import KNOBS, MAX_SAMPLES, field_names
from unimodal.demo.run_info import is_instruct, run_summary
from unimodal.demo.status import LABELS, error_line, ok_line, tracker
from unimodal.errors import UnimodalError

CSS = """
#gallery img, #reconstruction img { image-rendering: pixelated; }
.error-line p { color: var(--error-text-color); font-weight: 600; }
"""

def sampling_controls(actions: Actions) -> dict[str, gr.components.Component]:
    """Seed, number of samples and each modality's guidance scale, temperature, top-k and top-p, starting
    from the generate script's defaults (conf/generate.yaml)."""
    defaults = actions.defaults
    controls: dict[str, gr.components.Component] = {}
    with gr.Row():
        controls["seed"] = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
        controls["num_samples"] = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples",
                                            elem_id="num_samples")
    knobs = list(KNOBS.items())
    for modality in ["text", *actions.media]:
        gr.Markdown(f"**{LABELS[modality]}**")
        for pair in (knobs[:2], knobs[2:]):   # two by two: a 360 px sidebar holds two controls a row
            with gr.Row():
                for knob, (label, lowest, highest, whole) in pair:
                    start, key = defaults.get(knob, modality), f"{knob}.{modality}"
                    if whole:
                        controls[key] = gr.Number(value=int(start), precision=0, minimum=0, label=f"{label} (0 = off)",
                                                  min_width=100, elem_id=key.replace(".", "-"))
                    else:
                        top = 10.0 if knob == "cfg_scale" else 2.0 if knob == "temperature" else highest
                        controls[key] = gr.Slider(lowest, top, value=float(start), step=0.05, label=label,
                                                  min_width=100, elem_id=key.replace(".", "-"))
    return controls


def example_rows(fields: dict[str, Any], examples: Examples, media: list[str]) -> None:
    """Clickable examples from the run's own data: captions to draw or play, an image to caption, a sound to draw."""
    first = media[0] if media else "text"
    rows = [(caption, None, None, [first], f"{caption} → {LABELS[first]}") for caption in examples.captions[:3]]
    rows += [(caption, None, None, ["audio"], f"{caption} → sound") for caption in examples.captions[3:4]
             if "audio" in media]
    rows += [("", str(path), None, ["text"], "this image → text") for path in examples.images[:1]]
    answer = "image" if "image" in media else "text"
    rows += [("", None, str(path), [answer], f"this sound → {answer}") for path in examples.sounds[:1]]
    columns = [fields["prompt"], fields.get("image"), fields.get("sound"), fields["outputs"]]
    keep = [i for i, column in enumerate(columns) if column is not None]
    if rows:
        gr.Examples([[row[i] for i in keep] for row in rows], [columns[i] for i in keep],
                    example_labels=[row[-1] for row in rows], label=f"Examples ({examples.source})",
                    elem_id="examples")


def generate_tab(actions: Actions, controls: dict[str, Any], examples: Examples, streaming: bool) -> None:
    media = actions.media
    fields: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            fields["prompt"] = gr.Textbox(label="Prompt", lines=2, max_lines=4, elem_id="prompt",
                                          placeholder=examples.captions[0] if examples.captions else "a red circle")
            with gr.Row(equal_height=True):
                choices = [(LABELS[m], m) for m in ["text", *media]]
                fields["outputs"] = gr.CheckboxGroup(choices, value=[media[0] if media else "text"], scale=3,
                                                     label="Answer with (text first, then media)", elem_id="outputs")
                button = gr.Button("Generate", variant="primary", elem_id="generate", scale=1, min_width=110)
            instruct = is_instruct(actions.pipeline.run_dir)
            fields["chat"] = gr.Checkbox(value=instruct, label="as a chat turn (the run is chat-tuned)",
                                         visible=instruct, elem_id="chat-turn")
            with gr.Row():
                if "image" in media:
                    fields["image"] = gr.Image(label="Image", sources=["upload", "clipboard"], height=170,
                                               elem_id="image")
                if "audio" in media:
                    fields["sound"] = gr.Audio(label="Sound", sources=["upload", "microphone"], elem_id="sound")
                if "video" in media:
                    fields["clip"] = gr.Video(label="Clip", sources=["upload"], height=170, elem_id="clip")
            example_rows(fields, examples, media)
        with gr.Column(scale=6):
            status = gr.Markdown("Type a prompt or upload something, tick what to answer with, press Generate.",
                                 elem_id="status")
            gallery = gr.Gallery(label="Images", show_label=False, columns=4, height=300, object_fit="contain",
                                 fit_columns=False, format="png", elem_id="gallery",
                                 visible="image" in media or "video" in media)
            text = gr.Textbox(label="Text", lines=2, max_lines=6, elem_id="answer-text", interactive=False)
            sound = gr.Audio(label="Sound" + (" (plays while it is generated)" if streaming else
                                              " (install ffmpeg to hear it while it is generated)"),
                             streaming=streaming, autoplay=streaming, interactive=False, elem_id="answer-sound",
                             visible="audio" in media)
            files = gr.File(label="Sounds (WAV)", file_count="multiple", visible=False, elem_id="answer-files")

    names = [name for name in field_names(["text", *media]) if name in fields or name in controls]
    components = {**fields, **controls}
    inputs = [components[name] for name in names]
    outputs = [status, gallery, text, sound, files]
    rate = actions.pipeline.sample_rate

    def show(answer: Answer, sound_value: Any) -> tuple:
        return (ok_line(answer.status), answer.gallery, answer.text, sound_value,
                gr.update(value=[str(p) for p in answer.sounds], visible=len(answer.sounds) > 1))

    def on_generate(*values: Any, progress: gr.Progress = gr.Progress()) -> Any:
        try:
            request = actions.request(dict(zip(names, values, strict=True)))
            if streaming and actions.streams(request):
                yield ok_line("Generating sound..."), [], "", gr.update(value=None), gr.update(visible=False)
                start, chunks = time.perf_counter(), []
                for chunk in actions.stream(request, tracker(progress, "sound")):
                    chunks.append(chunk)
                    yield gr.skip(), gr.skip(), gr.skip(), (rate, chunk), gr.skip()
                answer = actions.streamed_answer(chunks, time.perf_counter() - start, request)
                yield ok_line(answer.status), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                return
            answer = actions.generate(request, tracker(progress, "generating"))
            yield show(answer, str(answer.sounds[0]) if answer.sounds else gr.update(value=None))
        except UnimodalError as err:   # a prop update, not a chunk: it empties a streaming player too
            yield (error_line("Could not generate", err), [], "", gr.update(value=None),
                   gr.update(value=None, visible=False))

    event = dict(fn=on_generate, inputs=inputs, outputs=outputs, preprocess=False, concurrency_id="model",
                 concurrency_limit=1, api_name="generate")
    button.click(**event)
    fields["prompt"].submit(**{**event, "api_name": False})


def build_page(actions: Actions, examples: Examples, streaming: bool | None = None) -> gr.Blocks:
    """The whole page for one loaded run. ``streaming``: play sound while it is generated (gradio encodes the
    stream with FFmpeg's command-line tool, so the default is whether ``ffmpeg`` is installed)."""
    from unimodal.demo.chat_tab import chat_tab
    from unimodal.demo.run_tab import run_tab

    streaming = shutil.which("ffmpeg") is not None if streaming is None else streaming
    chat = is_instruct(actions.pipeline.run_dir)
    with gr.Blocks(title=f"unimodal · {actions.pipeline.run_dir.name}", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as page:
        gr.Markdown(f"## unimodal · {actions.pipeline.run_dir.name}\n{run_summary(actions.pipeline)}",
                    elem_id="summary")
        with gr.Sidebar(open=False, label="Sampling", width=360):
            gr.Markdown("### Sampling\nFor Generate and Chat. Guidance scale 1 = off.")
            controls = sampling_controls(actions)
        with gr.Tabs():
            if chat:
                with gr.Tab("Chat", id="chat"):
                    chat_tab(actions, controls, examples)
            with gr.Tab("Generate", id="generate"):
                generate_tab(actions, controls, examples, streaming)
            with gr.Tab("Run", id="run"):
                run_tab(actions)
    return page


def launch(page: gr.Blocks, host: str = "127.0.0.1", port: int = 7860) -> str:
    """Serve ``page`` in a background thread; returns its address. ``page.close()`` stops it."""
    try:
        _, url, _ = page.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, share=False,
                                show_error=True, footer_links=["api", "settings"], run_history=False,
                                enable_monitoring=False, mcp_server=False, ssr_mode=False, pwa=False,
                                max_file_size="50mb", css=CSS)
    except OSError as err:
        raise UnimodalError(f"cannot serve on {host}:{port} ({err}); pass another port=<number>") from None
    return url
