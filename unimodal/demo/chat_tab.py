"""The Chat tab (runs tuned with stage=instruct): a conversation, each answer the assistant's next turn."""

from __future__ import annotations

from typing import Any

import gradio as gr

from unimodal.demo.actions import Actions
from unimodal.demo.examples import Examples
from unimodal.demo.status import LABELS, error_line, ok_line, tracker
from unimodal.errors import UnimodalError

ATTACHABLE = {"image": "image", "audio": "audio", "video": "video"}


def chat_tab(actions: Actions, controls: dict[str, Any], examples: Examples) -> None:
    media = actions.media
    history = gr.State([])   # the conversation as Pipeline.chat takes it (answers as Generation objects)
    shown = gr.State([])     # the same conversation as the chat window shows it
    window = gr.Chatbot(label="Conversation", height=360, elem_id="chat", feedback_options=None,
                        placeholder="Attach an image, ask about it; answers can hold text, then an image.")
    message = gr.MultimodalTextbox(placeholder="Ask a question (attach an image or a sound with the clip button)",
                                   file_types=[ATTACHABLE[m] for m in media], file_count="multiple",
                                   elem_id="chat-input", show_label=False)
    with gr.Row():
        outputs = gr.CheckboxGroup([(LABELS[m], m) for m in ["text", *media]], value=["text"], scale=3,
                                   label="Answer with (text, then media)", elem_id="chat-outputs")
        reset = gr.Button("New conversation", scale=1)
    status = gr.Markdown("", elem_id="chat-status")
    if examples.questions:
        gr.Examples([{"text": question, "files": [str(image)]} for image, question in examples.questions],
                    [message], label="Questions about the run's own scenes", elem_id="chat-examples")

    names = list(controls)

    def on_message(value: Any, chosen: Any, past: list, window_past: list, *knobs: Any,
                   progress: gr.Progress = gr.Progress()) -> tuple:
        form = dict(zip(names, knobs, strict=True))
        try:
            conversation, turn = actions.chat(past, value, chosen, form, tracker(progress, "answering"))
        except UnimodalError as err:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), error_line("Could not answer", err)
        window_now = [*window_past, *turn]
        return window_now, conversation, window_now, None, ok_line("")

    message.submit(on_message, [message, outputs, history, shown, *controls.values()],
                   [window, history, shown, message, status], preprocess=False, concurrency_id="model",
                   concurrency_limit=1, api_name="chat")
    reset.click(lambda: ([], [], [], ""), None, [window, history, shown, status], api_name=False)
