"""``data=folder`` holding sounds: ``metadata.jsonl`` lines ``{"file_name": "clips/01.wav", "text": "..."}``.

A folder is a sound folder when most of its listed files have an audio suffix (``AUDIO_SUFFIXES``). Every
file is decoded whole (libsndfile: WAV, FLAC, OGG, MP3, AIFF), mixed down to mono and resampled with
torchaudio to ``data.sample_rate``; empty, truncated or non-audio files are skipped and named in one log
line. A clip longer than ``data.audio_seconds`` is cut into consecutive windows of that length, each with
the file's text (named ``<file>#<n>``). Splits are by a hash of the file name (as for image folders), so the
windows of one recording never straddle two splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unimodal.data.audio_sets import AudioTextSet, windows
from unimodal.data.images import hash_split, skipped_line, split_limit
from unimodal.errors import DataError
from unimodal.media import try_read_audio

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"})


def is_audio_folder(entries: list[tuple[str, str]]) -> bool:
    """Most listed files have an audio suffix."""
    audio = sum(Path(name).suffix.lower() in AUDIO_SUFFIXES for name, _ in entries)
    return audio * 2 > len(entries)


def load_audio_folder(root: Path, entries: list[tuple[str, str]], data_cfg: Any,
                      splits: tuple[str, ...]) -> dict[str, AudioTextSet]:
    from tqdm.auto import tqdm

    sample_rate = int(data_cfg.sample_rate)
    clip = round(sample_rate * float(data_cfg.audio_seconds))
    if clip <= 0:
        raise DataError(f"data.audio_seconds={data_cfg.audio_seconds}: must be positive")
    read: dict[str, tuple[Any, str]] = {}
    kept: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    for name, text in tqdm(entries, desc="read sounds", unit="file", disable=None):
        if name not in read:
            read[name] = try_read_audio(root / name, sample_rate)
        wave, reason = read[name]
        if wave is None:
            if (name, reason) not in skipped:
                skipped.append((name, reason))
            continue
        kept.append((name, text))
    if skipped:
        print(skipped_line("unreadable files", root, skipped), flush=True)
    if len(kept) < 3:
        raise DataError(f"{root / 'metadata.jsonl'}: {len(kept)} of its {len(entries)} files are readable sounds; "
                        f"a folder needs at least 3 (one each for train, val and test)")
    result = {}
    for split in splits:
        indices = hash_split([name for name, _ in kept], split)
        waves, texts, names = [], [], []
        for index in indices:
            name, text = kept[index]
            pieces = windows(read[name][0], clip)
            for number, piece in enumerate(pieces):
                waves.append(piece)
                texts.append(text)
                names.append(name if len(pieces) == 1 else f"{name}#{number}")
        limit = split_limit(data_cfg, split)
        result[split] = AudioTextSet(waves[:limit], texts[:limit], sample_rate, clip, names[:limit])
    return result
