"""The synthetic world: scenes (:mod:`.world`), how they look and sound (:mod:`.render`), and the exact
analyzers that read images, sounds and captions back into objects (:mod:`.analyze`)."""
