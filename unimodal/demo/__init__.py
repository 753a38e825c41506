"""A web page over ``unimodal.load(run)``: generate, chat, stream sound and inspect the tokenizers (gradio).

The page is a thin layer: every answer comes from the public :class:`~unimodal.pipeline.Pipeline` API.
:mod:`.uploads`, :mod:`.form`, :mod:`.actions` and :mod:`.run_info` hold the logic and import no gradio, so
tests call them directly; :mod:`.page`, :mod:`.chat_tab` and :mod:`.run_tab` lay it out in gradio Blocks.
"""

import os

# Set before any module here imports gradio: no telemetry and no version check (the page also passes
# analytics_enabled=False); gradio then also turns off huggingface_hub's telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
