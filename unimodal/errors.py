"""User-facing errors: entry points print these as one line, without a traceback."""


class UnimodalError(RuntimeError):
    """Base of every error that is the user's to fix (bad config, file, prompt, checkpoint)."""


class ConfigError(UnimodalError):
    """A config key is unknown, mistyped, or has a value out of range."""


class VocabularyMismatch(UnimodalError):
    """Something was built for another vocabulary layout or other tokenizers."""


class DataError(UnimodalError):
    """Input data is missing or unreadable."""
