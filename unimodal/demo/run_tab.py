"""The Run tab: the run's config, tokenizer cards with reconstructions, the latest evaluation figures, and a
tokenizer playground (upload an image or a sound, see or hear it after its round trip through the codes)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from unimodal.demo.actions import Actions
from unimodal.demo.run_info import eval_figures, run_config, tokenizer_cards
from unimodal.demo.status import error_line, ok_line
from unimodal.errors import UnimodalError


def run_tab(actions: Actions) -> None:
    run_dir = actions.pipeline.run_dir
    with gr.Accordion("Tokenizer playground: your image or sound through its tokenizer and back", open=True):
        with gr.Row(equal_height=False):
            if "image" in actions.media:
                playground(actions, "image")
            if "audio" in actions.media:
                playground(actions, "audio")
    gr.Markdown("### Tokenizers")
    for card in tokenizer_cards(run_dir, ["text", *actions.media]):
        with gr.Accordion(f"{card.modality} tokenizer (card.md)", open=card.modality != "text"):
            with gr.Row(equal_height=False):
                gr.Markdown(card.markdown)
                if card.figures or card.sounds:
                    with gr.Column():
                        for figure in card.figures:
                            gr.Image(str(figure), label=figure.name, interactive=False, show_label=True)
                        for label, sound in card.sounds:
                            gr.Audio(str(sound), label=f"{label}: {sound.name}", interactive=False)
    gr.Markdown("### Evaluation")
    line, figures = eval_figures(run_dir)
    gr.Markdown(line, elem_id="eval-line")
    if figures:
        gr.Gallery([(str(path), caption) for path, caption in figures], columns=2, height=420, object_fit="contain",
                   label="Latest evaluation figures", elem_id="eval-figures")
    with gr.Accordion("Config (config.yaml)", open=False):
        gr.Code(run_config(run_dir) or "# no config.yaml in this run", language="yaml", elem_id="config")


def playground(actions: Actions, kind: str) -> None:
    """One upload, a button, and the reconstruction with its token count."""
    name = "image" if kind == "image" else "sound"
    with gr.Column():
        if kind == "image":
            upload = gr.Image(label="Your image", sources=["upload", "clipboard"], height=200, elem_id="play-image")
            shown: Any = gr.Image(label="Decoded from its codes", interactive=False, height=200,
                                  elem_id="reconstruction", format="png")
        else:
            upload = gr.Audio(label="Your sound", sources=["upload", "microphone"], elem_id="play-sound")
            shown = gr.Audio(label="Decoded from its codes", interactive=False, elem_id="reconstruction-sound")
        button = gr.Button(f"Reconstruct the {name}", elem_id=f"reconstruct-{name}")
        summary = gr.Markdown("", elem_id=f"tokens-{name}")

    def on_click(value: Any) -> tuple:
        try:
            result = actions.reconstruct(value, kind)
        except UnimodalError as err:
            return None, error_line("Could not reconstruct", err)
        shown_value = str(result.image) if kind == "image" else (actions.pipeline.sample_rate, result.sound)
        return shown_value, ok_line(result.summary)

    button.click(on_click, [upload], [shown, summary], preprocess=False, concurrency_id="model",
                 concurrency_limit=1, api_name=f"reconstruct_{name}")
