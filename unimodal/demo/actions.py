"""What the page's buttons do, over the public pipeline API; no gradio here, so tests call these directly.

Generation is always :meth:`Pipeline.generate`, :meth:`Pipeline.stream` or :meth:`Pipeline.chat`: this
module only turns their answers into what the page shows (upscaled images, WAV and GIF files, captions).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.demo.form import Request, checked_outputs, read_form, read_settings
from unimodal.demo.uploads import kind_of, read_upload, upload_path
from unimodal.errors import UnimodalError
from unimodal.media import write_gif, write_png, write_wav
from unimodal.pipeline import Generation, Pipeline, SamplingConfig

DISPLAY_SIZE = 256   # media.write_png shows small images upscaled (nearest) to about this size
Progress = Callable[[int, int], None]


@dataclass
class Answer:
    """What one press of Generate shows: a status line, gallery items, texts, and sound and clip files."""

    status: str
    gallery: list[tuple[Path, str]] = field(default_factory=list)   # (PNG or GIF file, caption)
    text: str = ""
    sounds: list[Path] = field(default_factory=list)


@dataclass
class Reconstruction:
    """A tokenizer round trip: the decoded image (a PNG, upscaled) or sound, and how many tokens it took."""

    summary: str
    image: Path | None = None
    sound: np.ndarray | None = None


class Actions:
    """The page's actions on one loaded run; files it writes go under ``workdir``."""

    def __init__(self, pipeline: Pipeline, defaults: SamplingConfig, workdir: Path) -> None:
        self.pipeline = pipeline
        self.defaults = defaults
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._names = itertools.count()

    @property
    def media(self) -> list[str]:
        return [m for m in ("image", "audio", "video") if m in self.pipeline.tokenizers]

    # --- Generate ----------------------------------------------------------------------------
    def request(self, form: dict[str, Any]) -> Request:
        return read_form(form, self.media, self.pipeline.sample_rate, self.defaults)

    def streams(self, request: Request) -> bool:
        """Sound alone, one sample: the page plays it while it is generated (:meth:`stream`)."""
        return request.outputs == ["audio"] and request.num_samples == 1

    def generate(self, request: Request, progress: Progress | None = None) -> Answer:
        start = time.perf_counter()
        results = self.pipeline.generate(request.parts, output=request.outputs, num_samples=request.num_samples,
                                         seed=request.seed, sampling=request.sampling, chat=request.chat,
                                         progress=progress)
        return self.answer(results, time.perf_counter() - start, request)

    def stream(self, request: Request, progress: Progress | None = None) -> Iterator[np.ndarray]:
        """Waveform chunks while the model emits the sound (through the pipeline's streaming decoder)."""
        yield from self.pipeline.stream(request.parts, output=request.outputs, seed=request.seed,
                                        sampling=request.sampling, chat=request.chat, progress=progress)

    def streamed_answer(self, chunks: list[np.ndarray], seconds: float, request: Request) -> Answer:
        wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        sounds = [self._write_sound(wave)] if len(wave) else []
        return Answer(self._status(1, seconds, request, False), sounds=sounds)

    def answer(self, results: list[Generation], seconds: float, request: Request) -> Answer:
        """Generations -> gallery items captioned with their sample's text, the texts, and sound files."""
        gallery, texts, sounds = [], [], []
        for index, result in enumerate(results, start=1):
            caption = f"[{index}] {result.text}" if result.text else f"sample {index}"
            if "text" in request.outputs:
                texts.append(f"[{index}] {result.text}")
            gallery += [(self._write_image(image), caption) for image in result.images]
            gallery += [(self._write_clip(clip, result.video_fps), caption) for clip in result.videos]
            sounds += [self._write_sound(wave) for wave in result.audio]
        status = self._status(len(results), seconds, request, any(result.truncated for result in results))
        if any(result.images for result in results):
            size = next(result.images[0].shape[0] for result in results if result.images)
            scale = max(1, DISPLAY_SIZE // size)
            status += f"; images {size} px, shown x{scale}" if scale > 1 else ""
        return Answer(status, gallery, "\n".join(texts), sounds)

    def _status(self, count: int, seconds: float, request: Request, truncated: bool) -> str:
        what = " then ".join(request.outputs)
        line = f"{count} answer{'s' if count > 1 else ''} ({what}) in {seconds:.1f} s, seed {request.seed}"
        return line + (" (a span was cut off by the context)" if truncated else "")

    def _write_sound(self, wave: np.ndarray) -> Path:
        path = self.workdir / f"sound-{next(self._names)}.wav"
        write_wav(path, wave, self.pipeline.sample_rate)
        return path

    def _write_clip(self, clip: np.ndarray, fps: float) -> Path:
        scale = max(1, DISPLAY_SIZE // clip.shape[1])
        return write_gif(clip, self.workdir / f"clip-{next(self._names)}.gif", fps, scale)

    def _write_image(self, image: np.ndarray) -> Path:
        return write_png(image, self.workdir / f"image-{next(self._names)}.png")

    # --- Chat (runs tuned with stage=instruct) ------------------------------------------------
    def chat(self, history: list[dict[str, Any]], message: dict[str, Any] | None, outputs: Any,
             form: dict[str, Any], progress: Progress | None = None
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One user turn (``message``: typed ``text`` and attached ``files``) -> the conversation with the
        assistant's answer, as :meth:`Pipeline.chat` messages and as chat-window messages (text and file dicts);
        ``form`` holds the sampling knobs and the seed."""
        outputs = checked_outputs(outputs, self.media)
        sampling, seed = read_settings(form, self.media, self.defaults)
        text, files = str((message or {}).get("text") or ""), list((message or {}).get("files") or [])
        parts: list[Any] = [read_upload(f, kind_of(f, self.media), self.pipeline.sample_rate) for f in files]
        shown: list[Any] = [{"path": str(self._write_image(part) if isinstance(part, np.ndarray) and part.ndim == 3
                                         else upload_path(f))} for f, part in zip(files, parts, strict=True)]
        if text.strip():
            parts.append(text.strip())
            shown.append(text.strip())
        if not parts:
            raise UnimodalError("nothing to answer: type a question, or attach an image or a sound")
        messages = [*history, {"role": "user", "content": parts}]
        reply = self.pipeline.chat(messages, output=outputs, seed=seed, sampling=sampling, progress=progress)
        return [*messages, {"role": "assistant", "content": reply}], [
            {"role": "user", "content": shown}, {"role": "assistant", "content": self.shown_parts(reply)}]

    def shown_parts(self, reply: Generation) -> list[Any]:
        """An answer's parts in order, as chat-window content: text, then image, sound or clip files."""
        shown: list[Any] = []
        for part in reply.parts:
            if part.modality == "text":
                shown.append(str(part.value).strip() or "(empty)")
            elif part.modality == "image":
                shown.append({"path": str(self._write_image(part.value))})
            elif part.modality == "audio":
                shown.append({"path": str(self._write_sound(part.value))})
            else:
                shown.append({"path": str(self._write_clip(part.value, reply.video_fps))})
        return shown or ["(no answer: the model ended its turn at once)"]

    # --- Run tab: tokenizer playground ----------------------------------------------------------
    def reconstruct(self, value: Any, kind: str) -> Reconstruction:
        """An uploaded image or sound through its tokenizer and back, with the number of tokens it takes."""
        if value is None:
            raise UnimodalError(f"upload {'an image' if kind == 'image' else 'a sound'} first")
        data = read_upload(value, kind, self.pipeline.sample_rate)
        segment = self.pipeline.segments_from(data)[0]
        decoded = self.pipeline.decode_media(segment)
        tokens = len(self.pipeline.codec.encode([segment], add_bos=False, add_eos=False).ids) - 2   # opener, closer
        tokenizer = self.pipeline.tokenizers[kind]
        books = int(getattr(tokenizer, "num_codebooks", 1))
        codes = np.asarray(segment.payload).shape if isinstance(segment.payload, np.ndarray) else None
        layout = f"codes {' x '.join(map(str, codes))}, " if codes else ""
        size = tokenizer.codebook_size
        book = f"{books} codebooks of {size}" if books > 1 else f"a codebook of {size}"
        summary = f"**{tokens} tokens** in the model's sequence ({layout}{book})"
        if kind == "image":
            return Reconstruction(summary, image=self._write_image(decoded))
        return Reconstruction(summary + f", {len(decoded) / self.pipeline.sample_rate:.2f} s", sound=decoded)
