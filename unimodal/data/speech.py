"""``data=speech``: spoken captions and sentences synthesised with espeak-ng (the ``espeakng-loader`` wheel).

``espeakng-loader`` (pip, GPL-3) ships ``libespeak-ng.so`` and its voice data; it is driven here in-process
through ctypes (no wrapper package on pip exposes voices, rate and pitch without a system espeak). The
library is optional: only this module needs it, and it says how to install it.

Texts are the synthetic world's captions ("a red circle left of a blue square") and short sentences from a
small seeded grammar. Voices are espeak-ng languages times voice variants (``en-us+f3``); every utterance
gets its own speed (words per minute) and pitch. Splits are by sentence *and* by voice: val and test speak
sentences that train never has, in voices that train never uses.

The WAVs are synthesised once into ``<data.cache_dir>/speech/<hash of the split's plan>/<split>/`` with a
``metadata.jsonl`` (``file_name``, ``text``, ``voice``, ``rate``, ``pitch``: a valid ``data=folder``);
each split is written to a ``.partial-<pid>`` folder and renamed when complete.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.data.audio_sets import AudioTextSet, read_audio, resample, write_wav
from unimodal.errors import ConfigError, DataError

METADATA = "metadata.jsonl"
HELD_OUT_FRACTION = 0.05   # of the sentences, to val and to test each

# A small grammar for sentences that are not captions: varied phonemes, 5-8 words.
_SUBJECTS = ("the old man", "a young girl", "my brother", "the teacher", "her friend", "the small dog",
             "a tall woman", "the farmer", "our neighbour", "the driver", "his mother", "the baker")
_VERBS = ("walks to", "looks at", "waits for", "runs past", "thinks about", "paints", "finds", "carries",
          "reads about", "sings to", "follows", "cleans")
_OBJECTS = ("the market", "a green bottle", "the quiet river", "seven yellow boxes", "the heavy door",
            "a strange letter", "the broken chair", "four white birds", "the busy station", "a warm coat",
            "the north window", "a cup of tea")
_ENDINGS = ("", " every morning", " after lunch", " in the rain", " before dark", " on sunday", " again",
            " very slowly")


def sentences(count: int, seed: int) -> list[str]:
    """``count`` distinct texts: half the synthetic world's captions, half grammar sentences (seeded)."""
    from unimodal.data.synthetic.world import World, WorldConfig

    rng = random.Random(seed)
    world = World(WorldConfig(held_out=()))
    captions = list(dict.fromkeys(world.caption(scene) for scene in world.dataset(count, seed=seed, split="all")))
    grammar: list[str] = []
    seen = set(captions)
    for _ in range(count * 20):
        if len(grammar) >= count:
            break
        text = (f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
                f"{rng.choice(_ENDINGS)}")
        if text not in seen:
            seen.add(text)
            grammar.append(text)
    texts = [t for pair in zip(captions, grammar, strict=False) for t in pair]
    return texts[:count]


def voice_names(data_cfg: Any) -> list[str]:
    """Every ``language+variant`` voice (``""`` is the language's default voice)."""
    return [f"{lang}{'+' + var if var else ''}" for lang in data_cfg.voices for var in data_cfg.variants]


def _hash_order(keys: list[str]) -> list[int]:
    return sorted(range(len(keys)), key=lambda i: (hashlib.sha1(keys[i].encode()).hexdigest(), i))


def split_sentences(texts: list[str], split: str) -> list[str]:
    """test / val: the first 5% each of the hash order of the texts; train: the rest."""
    order = _hash_order(texts)
    held = max(1, round(len(texts) * HELD_OUT_FRACTION))
    picked = {"test": order[:held], "val": order[held:2 * held], "train": order[2 * held:]}[split]
    return [texts[i] for i in sorted(picked)]


def split_voices(voices: list[str], held_out: int, split: str) -> list[str]:
    """val and test: the first ``held_out`` voices of the hash order; train: the others."""
    if not 1 <= held_out < len(voices):
        raise ConfigError(f"data.held_out_voices={held_out}: must be between 1 and {len(voices) - 1} "
                          f"(there are {len(voices)} voices)")
    order = _hash_order(voices)
    picked = order[:held_out] if split in ("val", "test") else order[held_out:]
    return [voices[i] for i in sorted(picked)]


class Espeak:
    """espeak-ng in this process (synchronous mode): ``synthesize(text, voice, rate, pitch)`` -> float32."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise ConfigError("data=speech needs the espeak-ng library: pip install espeakng-loader") from None
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        # 2 = AUDIO_OUTPUT_SYNCHRONOUS: samples come back through the callback, nothing is played.
        self.sample_rate = int(self.lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0))
        if self.sample_rate <= 0:
            raise DataError(f"espeak-ng failed to initialise from {espeakng_loader.get_data_path()}")
        self._chunks: list[np.ndarray] = []
        self._callback = self._CALLBACK(self._collect)   # kept alive: the library holds a raw pointer to it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ConfigError(f"espeak-ng has no voice {voice!r}; fix data.voices / data.variants")
        self.lib.espeak_SetParameter(1, int(rate), 0)    # espeakRATE, words per minute
        self.lib.espeak_SetParameter(3, int(pitch), 0)   # espeakPITCH, 0-100
        self._chunks.clear()
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 1, None, None)   # 1 = espeakCHARS_UTF8
        self.lib.espeak_Synchronize()
        wave = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return wave.astype(np.float32) / 32768.0


def _split_plan(data_cfg: Any, split: str) -> list[dict[str, Any]]:
    """The utterances of one split: text, voice, rate and pitch each (seeded, so the same every run)."""
    count = int({"train": data_cfg.num_train, "val": data_cfg.num_val, "test": data_cfg.num_test}[split])
    seed = int(data_cfg.seed)
    # One pool for every split (so the splits' sentences never overlap), with enough distinct texts that 5%
    # of them cover val and test.
    pool = max(int(data_cfg.num_train), 20 * max(int(data_cfg.num_val), int(data_cfg.num_test)))
    texts = split_sentences(sentences(pool, seed), split)
    voices = split_voices(voice_names(data_cfg), int(data_cfg.held_out_voices), split)
    rng = random.Random(f"{seed}-{split}")
    low_rate, high_rate = (int(v) for v in data_cfg.rate_range)
    low_pitch, high_pitch = (int(v) for v in data_cfg.pitch_range)
    return [{"file_name": f"{index:06d}.wav", "text": texts[index % len(texts)], "voice": rng.choice(voices),
             "rate": rng.randint(low_rate, high_rate), "pitch": rng.randint(low_pitch, high_pitch)}
            for index in range(count)]


def synthesize_split(data_cfg: Any, split: str, folder: Path) -> None:
    """Write the split's WAVs and metadata.jsonl into ``folder`` (atomically: a .partial folder, renamed)."""
    from tqdm.auto import tqdm

    plan = _split_plan(data_cfg, split)
    engine = Espeak()
    sample_rate, peak = int(data_cfg.sample_rate), float(data_cfg.peak)
    tmp = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in tqdm(plan, desc=f"speech {split}", unit="utt", disable=None):
        wave = resample(engine.synthesize(item["text"], item["voice"], item["rate"], item["pitch"]),
                        engine.sample_rate, sample_rate)
        wave = wave * (peak / max(float(np.abs(wave).max()), 1e-6))   # every voice at the same peak level
        write_wav(tmp / item["file_name"], wave, sample_rate)
    (tmp / METADATA).write_text("".join(json.dumps(item) + "\n" for item in plan), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def speech_folder(data_cfg: Any, split: str) -> Path:
    """The split's cache folder, synthesised first if missing. Named by a hash of exactly what it holds (the
    utterance plan, sample rate and level), so changing another split's size re-synthesises nothing."""
    content = {"plan": _split_plan(data_cfg, split), "sample_rate": int(data_cfg.sample_rate),
               "peak": float(data_cfg.peak)}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(str(data_cfg.cache_dir)) / "speech" / digest / split
    if not (folder / METADATA).is_file():
        synthesize_split(data_cfg, split, folder)
    return folder


def load_speech(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, AudioTextSet]:
    """Each split as clips of ``data.audio_seconds`` (padded with silence or cut) with their texts."""
    from tqdm.auto import tqdm

    sample_rate = int(data_cfg.sample_rate)
    clip = round(sample_rate * float(data_cfg.audio_seconds))
    result = {}
    for split in splits:
        folder = speech_folder(data_cfg, split)
        items = [json.loads(line) for line in (folder / METADATA).read_text(encoding="utf-8").splitlines() if line]
        waves, texts, names = [], [], []
        for item in tqdm(items, desc=f"read speech {split}", unit="wav", disable=None):
            wave, reason = read_audio(folder / item["file_name"], sample_rate)
            if wave is None:
                raise DataError(f"{folder / item['file_name']}: {reason}; delete {folder} to synthesise it again")
            waves.append(wave)
            texts.append(item["text"])
            names.append(item["file_name"])
        result[split] = AudioTextSet(waves, texts, sample_rate, clip, names)
    return result
